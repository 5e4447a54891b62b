"""Which device and how many CPU threads this process trains with."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when this machine has a GPU, else cpu; any other name is torch's."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPUs this process's cgroup may use (its CFS quota / period: a container's or a job's --cpus), or
    None when unlimited or unknown. cgroup v2 (`cpu.max`) first, then v1 (`cpu.cfs_quota_us`)."""
    try:
        quota, period = Path(root, "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path(root, "cpu", "cpu.cfs_quota_us").read_text())
        period = int(Path(root, "cpu", "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def choose_threads(share: int, affinity: int, quota: float | None, slurm: int | None) -> tuple[int, str]:
    """(threads, why): the fewest CPUs any limit allows this process (its affinity mask, its cgroup quota, the
    SLURM allocation), divided among `share` processes training at once. Oversubscribed threads thrash
    (benchmarks/README.md, "Threads")."""
    limits = {"affinity": affinity}
    if quota is not None:
        limits["cgroup quota"] = max(1, int(quota))
    if slurm is not None:
        limits["SLURM_CPUS_PER_TASK"] = slurm
    source, cpus = min(limits.items(), key=lambda kv: kv[1])
    n = max(1, cpus // max(1, share))
    return n, f"{n} of {cpus} CPUs ({source})" + (f" shared by {share} workers" if share > 1 else "")


THREADS: dict[str, object] = {}  # the choice of set_threads_from_allocation, for the runs' provenance


def set_threads_from_allocation(share: int = 1) -> None:
    """Set torch's CPU threads by `choose_threads` for this process and remember why (provenance)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    n, why = choose_threads(share, affinity, cgroup_cpu_quota(), int(cpus) if cpus.isdigit() else None)
    torch.set_num_threads(n)
    THREADS.update(threads=n, why=why)


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
