"""sweep/identity.py: one home for which config keys are a run's identity, shared by run_id and the readers."""

from __future__ import annotations

import copy
import hashlib
import json

from conftest import make_cfg

from sweep.config import run_id, semantic_config
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


# ------------------------------------------------------------------------------------------------ identity
def test_run_id_does_not_depend_on_where_the_data_is(tmp_path):
    a = make_cfg(tmp_path, "data=mnist", "data.root=/datasets/mnist")
    b = make_cfg(tmp_path, "data=mnist", "data.root=/scratch/me/mnist")
    assert run_id(a) == run_id(b)
    c = make_cfg(tmp_path, "data=mnist1d", "data.cache_dir=/tmp/a")
    d = make_cfg(tmp_path, "data=mnist1d", "data.cache_dir=/tmp/b")
    assert run_id(c) == run_id(d)
    assert run_id(a) != run_id(make_cfg(tmp_path, "data=fashion_mnist", "data.root=/datasets/mnist"))
    # how the files are fetched is not what they are (they are checksummed): a course mirror, or no download
    e = make_cfg(tmp_path, "data=mnist", "data.mirror=http://course.example/mnist/", "data.download=false")
    assert run_id(e) == run_id(make_cfg(tmp_path, "data=mnist"))


def test_run_id_of_a_config_without_paths_is_what_it_was(tmp_path):
    """Blanking paths must not move the results of existing runs (their paths were null): same hash as before."""
    c = make_cfg(tmp_path, "optimizer=adam", "lr=1e-3")
    # keys added since (choices, cuda_graph, objective...) are not semantic: configs written before them keep their id
    old = {
        k: v
        for k, v in c.items()
        if k
        not in (
            "name",
            "out_dir",
            "wandb",
            "cluster",
            "pack",
            "device",
            "log_every",
            "checkpoint_every",
            "hydra",
            "choices",
            "cuda_graph",
            "compile",
            "objective",
            "objective_if_failed",
            "search",
            "step_timeout_s",
        )
    }
    old["optimizer"] = {
        k: v for k, v in old["optimizer"].items() if k not in ("cls", "kwargs", "code", "relative_temperature")
    }
    old["schedule"] = {k: v for k, v in old["schedule"].items() if k != "ticks_per_run"}
    old["data"] = {k: v for k, v in old["data"].items() if k not in ("mirror", "download")}
    blob = json.dumps(old, sort_keys=True, separators=(",", ":"), default=str)
    assert run_id(c) == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert semantic_config(c)["data"]["root"] is None
