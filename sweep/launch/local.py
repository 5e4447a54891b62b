"""Run a sweep's packs on this machine: in this process, or `cluster.workers` processes at a time."""
from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

from sweep.runner import plan_packs, train_runs


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
    if workers <= 1 or len(packs) == 1:
        results = train_runs(cfgs, pack=pack)
    else:
        by_id: dict[int, dict] = {}
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [(p, pool.submit(train_runs, p, pack=len(p), progress=False, workers=workers)) for p in packs]
            for p, f in futures:
                for c, s in zip(p, f.result()):
                    by_id[id(c)] = s
        results = [by_id[id(c)] for c in cfgs]
    counts = Counter(r.get("status") for r in results)
    print(f"sweep: {dict(counts)} in {time.perf_counter() - t0:.1f} s; `sweep status {sweep_dir}` for the table")
    return results
