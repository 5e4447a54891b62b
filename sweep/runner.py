"""Run a list of resolved configs: skip finished runs, claim the rest, pack them, train, record failures.

This is what `sweep run`, the local multirun and every SLURM array task call. It never raises for one run's
failure: a failed run gets status `failed` and its traceback in error.txt, and the others go on.
"""
from __future__ import annotations

import os
import platform
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Sequence

import torch
from filelock import FileLock, Timeout

from sweep.config import run_id as config_run_id
from sweep.engine import (Interrupted, Run, Trainer, pack_key, resolve_device, set_threads_from_allocation,
                          slurm_job_id)
from sweep.results import RunDir, write_json, write_text, write_yaml
from sweep.tracking import Tracker

AUTO_PACK_CPU, AUTO_PACK_GPU = 64, 1024


def run_dir_for(cfg: dict) -> RunDir:
    return RunDir(Path(cfg["out_dir"]) / cfg["name"] / config_run_id(cfg))


def bytes_per_model(cfg: dict, num_inputs: int, num_outputs: int, batch: int) -> int:
    """A generous estimate of one model's training memory: params ×4 (param, grad, 2 optimizer moments) plus
    activations (×3 for autograd) and its batch."""
    sizes = [num_inputs, *cfg["model"]["hidden"], num_outputs]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    acts = batch * sum(sizes) * 3
    item = 8 if cfg["dtype"] == "float64" else 4
    return (4 * params + acts) * item


def auto_pack_size(cfg: dict, num_inputs: int, num_outputs: int, batch: int) -> int:
    """The most models that fit half the GPU's free memory (a quarter of RAM on a CPU), capped where batching
    stops paying."""
    device = resolve_device(cfg["device"])
    per = bytes_per_model(cfg, num_inputs, num_outputs, batch)
    if device.type == "cuda" and not torch.cuda.is_available():
        return AUTO_PACK_GPU  # planned on a machine without the GPU; the task re-plans where it runs
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, cap = free // 2, AUTO_PACK_GPU
    else:
        budget, cap = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4, AUTO_PACK_CPU
    return max(1, min(cap, budget // max(per, 1)))


def plan_packs(cfgs: Sequence[dict], pack: int | str) -> list[list[dict]]:
    """Group configs that can share a pack (same pack_key), in their given order, in chunks of at most `pack`."""
    groups: dict[str, list[dict]] = {}
    for c in cfgs:
        groups.setdefault(pack_key(c), []).append(c)
    packs = []
    for members in groups.values():
        size = pack if isinstance(pack, int) else _auto_size(members[0])
        packs.extend(members[i:i + size] for i in range(0, len(members), size))
    return packs


def _auto_size(cfg: dict) -> int:
    from sweep.engine import dataset

    data = dataset(cfg["data"])
    n = data.x_train.shape[0]
    batch = n if cfg["batch_size"] == "full" else min(int(cfg["batch_size"]), n)
    return auto_pack_size(cfg, data.num_inputs, data.num_outputs, batch)


def _load_checkpoint(run: Run) -> dict | None:
    if not run.dir.checkpoint.exists():
        return None
    ck = torch.load(run.dir.checkpoint, map_location="cpu", weights_only=False)
    if ck.get("run_id") != run.run_id:
        raise RuntimeError(f"{run.dir.checkpoint} belongs to run {ck.get('run_id')}, not {run.run_id}")
    return ck


def _fail(run: Run, exc: BaseException) -> None:
    tb = "".join(traceback.format_exception(exc))
    write_text(run.dir.error, tb)
    summary = dict(run.summary, run_id=run.run_id, name=run.cfg.get("name"), status="failed",
                   error=f"{type(exc).__name__}: {exc}")
    write_json(run.dir.summary, summary)
    run.summary = summary
    run.tracker.finish({"status": "failed"}, exit_code=1)
    print(f"sweep: run {run.run_id} failed: {type(exc).__name__}: {exc} (traceback in {run.dir.error})",
          file=sys.stderr)


def train_runs(cfgs: Sequence[dict], *, pack: int | str = 1, should_stop: Callable[[], bool] = lambda: False,
               progress: bool = True, workers: int = 1) -> list[dict]:
    """Train every config not yet finished; returns one summary per config (in order).

    Runs are claimed with a per-run file lock for the whole time they train, so two processes given the same
    sweep never train one run at the same time (the second skips it and reports it `claimed`). Raises
    Interrupted (after checkpointing) when should_stop() turns true. `workers` is how many processes share
    this machine's CPUs (each takes its share of threads).
    """
    set_threads_from_allocation(workers)
    results: dict[str, dict] = {}
    for group in plan_packs(cfgs, pack):
        with ExitStack() as stack:
            runs = []
            for cfg in group:
                rid = config_run_id(cfg)
                d = run_dir_for(cfg)
                d.root.mkdir(parents=True, exist_ok=True)
                if d.is_finished():
                    results[rid] = {"run_id": rid, "status": d.status(), "skipped": True}
                    continue
                lock = FileLock(str(d.claim))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    results[rid] = {"run_id": rid, "status": "claimed", "skipped": True}
                    continue
                stack.callback(lock.release)
                # who trains it: `sweep status` calls a run whose process is gone "lost" instead of "running"
                write_json(d.root / ".claim.json", {"host": platform.node(), "pid": os.getpid(),
                                                    "slurm_job_id": slurm_job_id()})
                runs.append(Run(cfg=cfg, run_id=rid, dir=d))
            if runs:
                _train_pack(runs, should_stop, progress)
                for r in runs:
                    results[r.run_id] = r.summary
    return [results[config_run_id(c)] for c in cfgs]


def _train_pack(runs: list[Run], should_stop: Callable[[], bool], progress: bool) -> None:
    """Checkpoint-aware training of one pack; groups its runs by the step they resume from."""
    starts: dict[int, list[tuple[Run, dict | None]]] = {}
    for run in runs:
        try:
            write_yaml(run.dir.config, run.cfg)
            ck = _load_checkpoint(run)
            run.history = list(ck["history"]) if ck else []
            run.summary = {"wall_s_before": ck["wall_s"] if ck else 0.0, "pack_size": len(runs)}
            starts.setdefault(ck["step"] if ck else 0, []).append((run, ck))
        except Exception as e:
            _fail(run, e)
    for start, members in sorted(starts.items()):
        sub = [r for r, _ in members]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wandb-init") as wandb_thread:
            _train_group(sub, start, [ck for _, ck in members], wandb_thread, should_stop, progress)


def _train_group(sub: list[Run], start: int, checkpoints: list, wandb_thread: ThreadPoolExecutor,
                 should_stop: Callable[[], bool], progress: bool) -> None:
    """Train runs that resume from the same step; a crash marks every unfinished one failed."""
    try:
        for r in sub:
            w = r.cfg["wandb"]
            r.tracker = Tracker.start(wandb_thread, run_id=r.run_id, run_dir=r.dir.root, group=r.cfg["name"],
                                      config=r.cfg, mode=w["mode"], project=w["project"], entity=w["entity"],
                                      tags=list(w["tags"]), init_timeout_s=w["init_timeout_s"])
        trainer = Trainer(sub, start, checkpoints, should_stop=should_stop, progress=progress)
        trainer.run()
    except Interrupted:
        for r in sub:
            r.tracker.finish({"status": "requeued"}, exit_code=0)
        raise
    except Exception as e:
        for r in sub:
            if r.summary.get("status") not in ("done", "diverged"):
                _fail(r, e)
