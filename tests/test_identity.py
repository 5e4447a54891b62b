"""sweep/identity.py: one home for which config keys are a run's identity, shared by run_id and the readers."""

from __future__ import annotations

import copy

from conftest import make_cfg

from sweep.config import run_id
from sweep.identity import is_semantic


def _changed(cfg: dict, dotted: str) -> dict:
    out = copy.deepcopy(cfg)
    node = out
    *path, last = dotted.split(".")
    for p in path:
        node = node[p]
    node[last] = "something else"
    return out


def test_a_column_is_semantic_exactly_when_it_changes_run_id(tmp_path):
    """collect's "not swept, never splits a config" list had drifted from run_id's (cuda_graph, compile,
    objective*, search): both now read sweep.identity, and this pins them to each other key by key."""
    cfg = make_cfg(tmp_path, "optimizer=adam")
    columns = [k for k in cfg if not isinstance(cfg[k], dict) or k in ("wandb", "cluster", "search", "choices")]
    columns += [f"data.{k}" for k in cfg["data"]] + [f"optimizer.{k}" for k in ("betas", "eps")]
    for column in columns:
        assert (run_id(_changed(cfg, column)) != run_id(cfg)) == is_semantic(column), column
    assert is_semantic("choices.optimizer") and not is_semantic("choices.cluster")
