"""Checks that need the data: run on the submitting machine before anything is written or submitted."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sweep.data import cached_splits
from sweep.optim import custom as custom_optimizer
from sweep.sampling import steps_per_epoch


def check_data(cfgs: Sequence[dict]) -> None:
    """Load each distinct dataset of `cfgs` once, on the CPU (the submitting machine may have no GPU), so a
    missing file fails before anything is written; then check what needs the run's length in steps."""
    from sweep.config import check_schedule_fits

    sizes: dict[str, int] = {}
    checked: set[str] = set()
    for c in cfgs:
        key = json.dumps(c["data"], sort_keys=True)
        if key not in sizes:
            sizes[key] = cached_splits(c["data"]).x_train.shape[0]
        n = sizes[key]
        total = c["epochs"] * steps_per_epoch(n, n if c["batch_size"] == "full" else min(c["batch_size"], n))
        check_schedule_fits(c, total)
        if c["optimizer"]["name"] == "custom":
            key = json.dumps([c["optimizer"]["cls"], c["optimizer"]["kwargs"], c["lr"]], sort_keys=True, default=str)
            if key not in checked:
                custom_optimizer.check(c["optimizer"], c["lr"])
                checked.add(key)
