"""Run a sweep's packs on this machine: in this process, or `cluster.workers` processes at a time.

Worker processes die with the sweep process: each asks Linux for a SIGTERM when its parent dies
(prctl PR_SET_PDEATHSIG) and then takes its own children (wandb-core) with it, and the sweep process, on SIGTERM
or Ctrl-C, stops its workers before it exits. Otherwise a killed sweep would leave workers (and their wandb-core
processes, ~400 MB each) training on as orphans, with the rest of the grid never started.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sweep.packing import plan_packs
from sweep.runner import record_failed, train_runs

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_WAIT_S = 3.0  # how long stopped workers get to exit before SIGKILL


def _pack_size(cfgs: Sequence[dict]) -> int | str:
    p = cfgs[0]["pack"]
    return p if isinstance(p, int) else "auto"


def run_local(cfgs: Sequence[dict], sweep_dir: Path) -> list[dict]:
    """Train every config (skipping finished ones); returns one summary per config, in order."""
    t0 = time.perf_counter()
    pack = _pack_size(cfgs)
    workers = int(cfgs[0]["cluster"]["workers"])
    packs = plan_packs(cfgs, pack)
    print(f"sweep: {len(cfgs)} runs in {len(packs)} pack(s) -> {sweep_dir}")
    student = [p for p in packs if p[0]["optimizer"]["name"] == "custom"]
    if (workers <= 1 or len(packs) == 1) and not student:
        results = train_runs(cfgs, pack=pack)
    elif workers <= 1 or len(packs) == 1:
        by_id: dict[int, dict] = {}
        ours = [c for p in packs if p not in student for c in p]
        for c, s in zip(ours, train_runs(ours, pack=pack) if ours else []):
            by_id[id(c)] = s
        for p in student:
            for c, s in zip(p, _isolated(p)):
                by_id[id(c)] = s
        results = [by_id[id(c)] for c in cfgs]
    else:
        by_id = {}
        for p, summaries in zip(packs, _run_packs(packs, workers)):
            for c, s in zip(p, summaries):
                by_id[id(c)] = s
        results = [by_id[id(c)] for c in cfgs]
    counts = Counter(r.get("status") for r in results)
    print(
        f"sweep: {dict(counts)} in {time.perf_counter() - t0:.1f} s; "
        f"`sweep status {shlex.quote(str(sweep_dir))}` for the table"
    )
    return results


def _isolated(pack: list[dict]) -> list[dict]:
    """train_runs(pack) in a process of its own: a student's optimizer that ends its process (os._exit, a crash
    in native code) fails its own runs, said, and the rest of the grid trains. A pack whose process dies is
    tried again a run at a time, so only the runs that end their process fail."""
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=mp.get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
    )
    try:
        with _sigterm_raises():
            return pool.submit(train_runs, pack, pack=len(pack)).result()
    except BrokenProcessPool:
        if len(pack) > 1:
            return [s for c in pack for s in _isolated([c])]
        cls = pack[0]["optimizer"].get("cls")
        return record_failed(pack, f"its process ended without a word: os._exit, or a crash, in optimizer.cls={cls}")
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown()


def _run_packs(packs: list[list[dict]], workers: int) -> list[list[dict]]:
    """train_runs(pack) for every pack, `workers` processes at a time; returns their results in order. Any
    way out but success (an error, SIGTERM, Ctrl-C) stops the workers and their children before returning."""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
    )
    try:
        with _sigterm_raises():
            futures = [pool.submit(train_runs, p, pack=len(p), progress=False, workers=workers) for p in packs]
            out = [f.result() for f in futures]
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown()
    return out


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit(143) in the main thread (as Ctrl-C raises KeyboardInterrupt),
    so the caller's cleanup runs instead of the process vanishing; a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    prev = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, prev)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop every worker of `pool` and their descendants (SIGTERM, then SIGKILL after STOP_WAIT_S), and drop
    the pool without waiting for its queued packs."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # CPython's pid -> Process map
    pids = [q for p in procs if p.pid for q in (p.pid, *_descendants(p.pid))]
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_all([p for p in pids if _alive(p)], signal.SIGKILL)
    for p in procs:
        p.join(timeout=1)
    pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------- in the worker
def _die_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: get SIGTERM when the parent dies (Linux), and on SIGTERM take this worker's
    own children (wandb-core) down before exiting. Exits at once if the parent is already gone."""
    signal.signal(signal.SIGTERM, _exit_with_children)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect: nobody would tell us
        _exit_with_children(signal.SIGTERM, None)


def _exit_with_children(signum: int, frame: object) -> None:
    """SIGTERM handler of a worker: terminate its descendants, then exit without cleanup (143)."""
    _signal_all(_descendants(os.getpid()), signal.SIGTERM)
    os._exit(128 + signum)


# ---------------------------------------------------------------------------------------------- processes
def _descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc; [] where there is none)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (d / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
