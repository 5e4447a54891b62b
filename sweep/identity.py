"""Which config keys are part of what a run computes: the one home of that fact, torch-free so the readers
(`sweep collect`, the plots) and `run_id` (sweep.config) share it.

Contract:
- `NON_SEMANTIC_KEYS`: top-level keys that say where or how a run is executed or recorded; excluded from run_id.
- `DATA_PATH_KEYS`, `DATA_FETCH_KEYS`: `data.*` keys that say where the data is or how it is fetched, not what
  it is (paths are blanked before hashing, fetch keys dropped: see `sweep.config.semantic_config`).
- `is_semantic(column)`: whether a flattened config column (`optimizer.lr`, `data.root`, `choices.cluster`)
  can tell two configurations apart. Hydra's group choices are semantic (two presets of one optimizer differ)
  except those of groups that say where a run executes (cluster, wandb, hydra).
"""

from __future__ import annotations

NON_SEMANTIC_KEYS = (
    "name",
    "out_dir",
    "wandb",
    "cluster",
    "pack",
    "device",
    "log_every",
    "checkpoint_every",
    "choices",
    "cuda_graph",
    "compile",
    "step_timeout_s",
    "objective",
    "objective_if_failed",
    "search",
)
# Blanked (set to None, not dropped, so that the ids of runs recorded before paths were blanked, whose paths were
# almost all null, stay the same) before hashing.
DATA_PATH_KEYS = ("root", "cache_dir")
# Dropped before hashing (the files are checksummed), as these keys came after run ids were first made and runs
# recorded before them must keep their ids.
DATA_FETCH_KEYS = ("mirror", "download")
CHOICES_NOT_SEMANTIC = ("cluster", "wandb", "hydra")


def is_semantic(column: str) -> bool:
    """Whether the flattened config column `column` is part of what a run computes."""
    top, _, rest = column.partition(".")
    if top == "choices":
        return rest.partition(".")[0] not in CHOICES_NOT_SEMANTIC
    if top in NON_SEMANTIC_KEYS:
        return False
    return not (top == "data" and rest in (*DATA_PATH_KEYS, *DATA_FETCH_KEYS))
