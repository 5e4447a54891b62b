"""Checks that need the data: run on the submitting machine before anything is written or submitted."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sweep.data import cached_splits
from sweep.errors import ConfigError
from sweep.optim import custom as custom_optimizer
from sweep.sampling import steps_per_epoch


def check_data(cfgs: Sequence[dict]) -> None:
    """Load each distinct dataset of `cfgs` once, on the CPU (the submitting machine may have no GPU), so a
    missing file fails before anything is written; then check what needs the run's length in steps or the
    data's task. Raises DataError or ConfigError (one line)."""
    from sweep.config import check_schedule_fits

    sizes: dict[str, tuple[int, str]] = {}
    student: dict[str, tuple[dict, float]] = {}
    for c in cfgs:
        key = json.dumps(c["data"], sort_keys=True)
        if key not in sizes:
            data = cached_splits(c["data"])
            sizes[key] = (data.x_train.shape[0], data.task)
        n, task = sizes[key]
        objective = c.get("objective", "")
        if task == "regression" and objective.endswith("_acc"):  # every run would return objective_if_failed
            raise ConfigError(
                f"objective={objective} but data={c['data']['name']} is a regression task (no accuracy): "
                f"use objective={objective.removesuffix('_acc')}_loss"
            )
        total = c["epochs"] * steps_per_epoch(n, n if c["batch_size"] == "full" else min(c["batch_size"], n))
        check_schedule_fits(c, total)
        if c["optimizer"]["name"] == "custom":
            key = json.dumps([c["optimizer"]["cls"], c["optimizer"]["kwargs"], c["lr"]], sort_keys=True, default=str)
            student.setdefault(key, (c["optimizer"], c["lr"]))
    if student:  # one process for every distinct (class, kwargs, lr): a student's code cannot end ours
        custom_optimizer.check_isolated(list(student.values()), timeout_s=cfgs[0].get("step_timeout_s"))
