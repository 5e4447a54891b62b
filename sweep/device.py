"""Which device and how many CPU threads this process trains with."""

from __future__ import annotations

import os

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when this machine has a GPU, else cpu; any other name is torch's."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads_from_allocation(share: int = 1) -> None:
    """Use the CPUs SLURM gave this task (or this machine's), divided among `share` concurrent workers:
    oversubscribed threads thrash (measured here: 2 threads beside another busy process ran ~6x slower)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    total = int(cpus) if cpus and cpus.isdigit() else (os.cpu_count() or 1)
    if cpus or share > 1:
        torch.set_num_threads(max(1, total // share))
