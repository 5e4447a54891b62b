"""Run a list of resolved configs: skip finished runs, claim the rest, pack them, train, record failures.

This is what `sweep run`, the local multirun and every SLURM array task call. It never raises for one run's
failure: a failed run gets status `failed` and its traceback in error.txt, and the others go on.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch

from sweep.config import run_id as config_run_id
from sweep.device import set_threads_from_allocation
from sweep.engine import Run, Trainer, checkpoint_history
from sweep.errors import Interrupted, storage_problem
from sweep.mirror import start_follower
from sweep.packing import plan_packs
from sweep.provenance import slurm_job_id
from sweep.results import CORRUPT, FINISHED, summary_record
from sweep.store import Claims, PackWriter, RunRecord, load_start, scan
from sweep.tracking import wandb_id


def sweep_dir_for(cfg: dict) -> Path:
    return Path(cfg["out_dir"]) / cfg["name"]


def with_stored_summary(cfg: dict, result: dict) -> dict:
    """A run's result as train_runs gave it, or, for a run it skipped as finished (whose result holds only its
    status), the summary the store holds for it: what an objective is read from."""
    if not result.get("skipped") or result.get("status") not in FINISHED:
        return result
    rec = scan(sweep_dir_for(cfg)).get(config_run_id(cfg))
    return {**(rec.summary or {}), **result} if rec is not None else result


def _fail(run: Run, exc: BaseException) -> None:
    tb = "".join(traceback.format_exception(exc))
    base = run.store.summaries.get(run.run_id) or run.summary
    summary = summary_record(
        base,
        run_id=run.run_id,
        name=run.cfg.get("name"),
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
        traceback=tb,
        wandb_id=run.wandb_id,
    )
    run.store.write_summaries({run.run_id: summary})
    run.summary = summary
    print(
        f"sweep: run {run.run_id} failed: {type(exc).__name__}: {exc} (`sweep show {run.store.sweep_dir} "
        f"{run.run_id}` has the traceback)",
        file=sys.stderr,
    )


def train_runs(
    cfgs: Sequence[dict],
    *,
    pack: int | str = 1,
    should_stop: Callable[[], bool] = lambda: False,
    progress: bool = True,
    workers: int = 1,
) -> list[dict]:
    """Train every config not yet finished; returns one summary per config (in order).

    Runs are claimed with a per-run file lock for the whole time they train, so two processes given the same
    sweep never train one run at the same time (the second skips it and reports it `claimed`). Raises
    Interrupted (after checkpointing) when should_stop() turns true. `workers` is how many processes share
    this machine's CPUs (each takes its share of threads).
    """
    set_threads_from_allocation(workers)
    online = {sweep_dir_for(c) for c in cfgs if c["wandb"]["mode"] == "online"}
    for d in sorted(online):  # wandb is a separate process that follows the store: never training's problem
        start_follower(d)
    results: dict[str, dict] = {}
    with _ctrl_c_stops() as ctrl_c:
        stop = lambda: ctrl_c["pressed"] or should_stop()  # noqa: E731
        for group in plan_packs(cfgs, pack):
            _train_planned(group, results, stop, progress, ctrl_c)
    return [results[config_run_id(c)] for c in cfgs]


@contextmanager
def _ctrl_c_stops() -> Iterator[dict]:
    """While training in the main thread, the first Ctrl-C asks for a checkpoint at the next sync point (then
    Interrupted is raised); a second one stops at once (KeyboardInterrupt). Yields {"pressed": bool}."""
    state = {"pressed": False}
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield state  # someone else (a SLURM task, a test, a notebook) handles signals
        return

    def pressed(signum: int, frame: Any) -> None:
        state["pressed"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            "\nsweep: Ctrl-C: saving checkpoints at the next sync point (Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, pressed)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _train_planned(
    group: list[dict], results: dict[str, dict], should_stop: Callable[[], bool], progress: bool, ctrl_c: dict
) -> None:
    """Claim the unfinished runs of one planned pack, train them, and put their summaries into `results`."""
    sweep_dir = sweep_dir_for(group[0])
    with ExitStack() as stack:
        # claim first, then read the store once: a run another process finished before our claim is seen
        mine, theirs = [], []
        for cfg in group:
            rid = config_run_id(cfg)
            if Claims.claim(sweep_dir, rid):
                stack.callback(Claims.release, sweep_dir, rid)
                mine.append((cfg, rid))
            else:
                theirs.append(rid)
        records = scan(sweep_dir)
        for rid in theirs:
            rec = records.get(rid)
            if rec is not None and rec.status in FINISHED:
                results[rid] = {"run_id": rid, "status": rec.status, "skipped": True}
            else:
                results[rid] = {"run_id": rid, "status": "claimed", "skipped": True, "claimed_by": _claimant(rec)}
        runs = []
        for cfg, rid in mine:
            rec = records.get(rid)
            if rec is not None and rec.status in FINISHED:
                results[rid] = {"run_id": rid, "status": rec.status, "skipped": True}
                continue
            if rec is not None and rec.status == CORRUPT:
                say = f"sweep: {rec.summary_path} is unreadable; training run {rid} again from its checkpoint"
                print(say, file=sys.stderr)
            runs.append(Run(cfg=cfg, run_id=rid, record=rec))
        if runs:
            try:
                _train_pack(runs, should_stop, progress)
            except Interrupted:
                if ctrl_c["pressed"]:
                    for r in runs:
                        if r.summary.get("status") not in FINISHED:
                            _mark_interrupted(r)
                raise
            for r in runs:
                results[r.run_id] = r.summary


def _claimant(rec: RunRecord | None) -> str:
    """Who holds a run's claim, as "PID 123 on host" (from its pack's .claim.json), or "another process"."""
    owner = (rec.claim if rec is not None else None) or {}
    try:
        job = owner.get("slurm_job_id")
        return f"PID {owner['pid']} on {owner['host']}" + (f" (SLURM job {job})" if job else "")
    except KeyError:
        return "another process"


def record_failed(cfgs: Sequence[dict], error: str) -> list[dict]:
    """Record each run of `cfgs` not finished as failed with `error`, in a pack of its own (the newest record
    wins): for runs whose process ended without a word (os._exit, a crash), so they are not left `running`.
    Returns one summary per config; a run claimed by another process, or finished meanwhile, is left alone."""
    out = []
    for cfg in cfgs:
        sweep_dir, rid = sweep_dir_for(cfg), config_run_id(cfg)
        if not Claims.claim(sweep_dir, rid):
            out.append({"run_id": rid, "status": "claimed", "skipped": True})
            continue
        try:
            rec = scan(sweep_dir).get(rid)
            if rec is not None and rec.status in FINISHED:
                out.append({"run_id": rid, "status": rec.status, "skipped": True})
                continue
            writer = PackWriter(sweep_dir, {rid: cfg})
            writer.start(_owner())
            base = (rec.summary if rec is not None else None) or {"step": 0}
            summary = summary_record(base, run_id=rid, name=cfg.get("name"), status="failed", error=error)
            writer.write_summaries({rid: summary})
            out.append(summary)
            print(f"sweep: run {rid} failed: {error}", file=sys.stderr)
        finally:
            Claims.release(sweep_dir, rid)
    return out


def _owner() -> dict:
    """Who trains a pack: `sweep status` calls a run whose process is gone "lost" instead of "running"."""
    return {"host": platform.node(), "pid": os.getpid(), "slurm_job_id": slurm_job_id()}


def _prepare(run: Run, pack_size: int, cache: dict) -> dict | None:
    """Load the run's newest checkpoint (None: start from scratch) and its wandb id; raises for a bad
    checkpoint."""
    ck = load_start(run.record, cache)
    run.wandb_id = wandb_id(run.record)
    run.history = checkpoint_history(ck) if ck else []
    run.wall_share_s = float(ck.get("wall_share_s", 0.0)) if ck else 0.0
    run.row_loss_sum = float(ck.get("row_loss_sum", 0.0)) if ck else 0.0
    run.row_steps = int(ck.get("row_steps", 0)) if ck else 0
    run.summary = {
        "wall_s_before": ck["wall_s"] if ck else 0.0,
        "pack_size": pack_size,
        "samples_per_s_before": ck.get("samples_per_s") if ck else None,
    }
    return ck


def _writer(runs: list[Run]) -> PackWriter:
    """The pack of these runs in the store, started: its configs and owner written."""
    writer = PackWriter(sweep_dir_for(runs[0].cfg), {r.run_id: r.cfg for r in runs})
    writer.start(_owner())
    for r in runs:
        r.store = writer
    return writer


def _train_pack(runs: list[Run], should_stop: Callable[[], bool], progress: bool) -> None:
    """Checkpoint-aware training of one pack; groups its runs by the step they resume from.

    Should a pack of several runs crash, each of its unfinished runs is trained again alone (from its last
    checkpoint), so that one bad run fails by itself and the others finish (a model's trajectory does not depend
    on its pack, so they finish with the same numbers)."""
    starts: dict[int, list[tuple[Run, dict | None]]] = {}
    cache: dict = {}
    for run in runs:
        try:
            ck = _prepare(run, len(runs), cache)
            starts.setdefault(ck["step"] if ck else 0, []).append((run, ck))
        except Exception as e:
            if isinstance(e, OSError) and storage_problem(e):
                raise
            _writer([run])
            _fail(run, e)
    cache.clear()
    for start, members in sorted(starts.items()):
        sub = [r for r, _ in members]
        _writer(sub)
        error = _train_group(sub, start, [ck for _, ck in members], should_stop, progress)
        if error is None:
            continue
        left = [r for r in sub if r.summary.get("status") not in FINISHED]
        if len(left) == 1:
            _fail(left[0], error)
            continue
        records = scan(sweep_dir_for(left[0].cfg))  # the crashed pack's last checkpoint is where they resume
        for r in left:
            r.record = records.get(r.run_id)
        if _out_of_memory(error):  # pack=auto's estimate was too generous for this device: halve the pack
            half = (len(left) + 1) // 2
            print(
                f"sweep: a pack of {len(left)} runs does not fit in memory; training it as packs of {half}",
                file=sys.stderr,
            )
            parts = [left[:half], left[half:]]
        else:
            print(
                f"sweep: a pack of {len(left)} runs failed ({type(error).__name__}: {error}); training each "
                "alone to find the failing run",
                file=sys.stderr,
            )
            parts = [[r] for r in left]
        for part in parts:
            _train_pack(part, should_stop, progress)


def _out_of_memory(error: BaseException) -> bool:
    """Did the device (GPU, or the host for a CPU pack) run out of memory?"""
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("out of memory" in str(error) or "can't allocate memory" in str(error))
    )


def _train_group(
    sub: list[Run], start: int, checkpoints: list, should_stop: Callable[[], bool], progress: bool
) -> Exception | None:
    """Train runs that resume from the same step; returns the exception that crashed the pack, if any (its
    finished runs keep their results). Storage errors (full disk, read-only folder) and interruptions raise."""
    try:
        Trainer(sub, start, checkpoints, should_stop=should_stop, progress=progress).run()
    except Interrupted:
        raise
    except KeyboardInterrupt:
        for r in sub:  # a second Ctrl-C: no new checkpoint, but the summary must not claim it is training
            if r.summary.get("status") not in FINISHED:
                _mark_interrupted(r)
        raise
    except (Exception, SystemExit) as e:  # SystemExit: a student's optimizer called sys.exit; it fails alone
        if storage_problem(e):
            raise
        return e if isinstance(e, Exception) else RuntimeError(f"the optimizer called sys.exit({e.code!r})")
    return None


def _mark_interrupted(run: Run) -> None:
    """Say in the store that the run stopped on request and resumes from its last checkpoint."""
    if run.store is None:
        return
    base = run.store.summaries.get(run.run_id) or {"step": 0}
    run.store.write_summaries(
        {run.run_id: summary_record(base, run_id=run.run_id, name=run.cfg.get("name"), status="interrupted")}
    )
