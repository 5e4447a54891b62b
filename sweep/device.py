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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEPT = False


def keep_freed_memory() -> None:
    """Let glibc keep the memory a CPU step frees for the next step (once per process; elsewhere a no-op).

    A step allocates and frees the same MB-sized activations and gradients every time. glibc's defaults give
    blocks that size back to the OS (mmap above a moving threshold, trimming above 2x it) and fault them in
    again on the next step; kept in the heap they are reused warm. Measured on the 2-core CPU, a pack of 64
    digits MLPs in 8 fresh processes each way (benchmarks/bench_pack.py --malloc): with glibc's defaults the
    step took 1.7-2.1 ms, but 3.6 ms in 2 of them (5-38 page faults per step); kept, 1.7-2.0 ms in all, with no
    page faults (median 1.14x). The cost: up to 512 MB freed is not returned to the OS while the process lives,
    which a training process would need again anyway."""
    global _KEPT
    if _KEPT:
        return
    _KEPT = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 << 20)  # blocks under 64 MB from the heap, not fresh mmaps
        libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20)  # and do not trim the heap under 512 MB free
    except (OSError, AttributeError):  # not glibc (macOS, musl): their allocators keep their own policy
        pass
