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
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from sweep.config import run_id as config_run_id
from sweep.device import set_threads_from_allocation
from sweep.engine import Interrupted, Run, Trainer, checkpoint_history
from sweep.packing import plan_packs
from sweep.provenance import provenance, slurm_job_id
from sweep.results import (
    FINISHED,
    RunDir,
    clean_temporaries,
    load_torch,
    read_summary,
    storage_problem,
    summary_record,
    write_config,
    write_configs,
    write_json,
    write_text,
)
from sweep.tracking import Tracker


def run_dir_for(cfg: dict) -> RunDir:
    return RunDir(Path(cfg["out_dir"]) / cfg["name"] / config_run_id(cfg))


def _load_checkpoint(run: Run) -> dict | None:
    if not run.dir.checkpoint.exists():
        return None
    ck = load_torch(run.dir.checkpoint)
    if ck.get("run_id") != run.run_id:
        raise RuntimeError(f"{run.dir.checkpoint} belongs to run {ck.get('run_id')}, not {run.run_id}")
    return ck


def _fail(run: Run, exc: BaseException) -> None:
    tb = "".join(traceback.format_exception(exc))
    write_text(run.dir.error, tb)
    summary = summary_record(
        run.summary, run_id=run.run_id, name=run.cfg.get("name"), status="failed", error=f"{type(exc).__name__}: {exc}"
    )
    write_json(run.dir.summary, summary)
    run.summary = summary
    run.tracker.finish({"status": "failed"}, exit_code=1)
    print(
        f"sweep: run {run.run_id} failed: {type(exc).__name__}: {exc} (traceback in {run.dir.error})", file=sys.stderr
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
    with ExitStack() as stack:
        runs = []
        for cfg in group:
            rid = config_run_id(cfg)
            d = run_dir_for(cfg)
            d.root.mkdir(parents=True, exist_ok=True)
            status = d.status()
            if d.is_finished():
                results[rid] = {"run_id": rid, "status": status, "skipped": True}
                continue
            lock = FileLock(str(d.claim_lock))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                results[rid] = {"run_id": rid, "status": "claimed", "skipped": True, "claimed_by": _claimant(d)}
                continue
            stack.callback(lock.release)
            clean_temporaries(d.root)  # ours alone while we hold the claim: torn writes of a killed process
            if status == "corrupt":
                print(
                    f"sweep: {d.summary} is unreadable; training run {rid} again from its checkpoint", file=sys.stderr
                )
            # who trains it: `sweep status` calls a run whose process is gone "lost" instead of "running". Not
            # fsynced: after a crash of the machine its process is gone whatever the file says (and an fsync per
            # run was 1 ms of a pack's start, 4 s for K=4,096)
            owner = {"host": platform.node(), "pid": os.getpid(), "slurm_job_id": slurm_job_id()}
            write_json(d.claim_owner, owner, durable=False)
            runs.append(Run(cfg=cfg, run_id=rid, dir=d))
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


def _claimant(d: RunDir) -> str:
    """Who holds a run's claim, as "PID 123 on host" (from .claim.json), or "another process"."""
    owner = d.read_claim_owner() or {}
    try:
        job = owner.get("slurm_job_id")
        return f"PID {owner['pid']} on {owner['host']}" + (f" (SLURM job {job})" if job else "")
    except KeyError:
        return "another process"


def _prepare(run: Run, pack_size: int, config_written: bool) -> dict | None:
    """Write the run's config (unless the pack wrote it) and load its checkpoint (None: start from scratch);
    raises for a bad checkpoint."""
    if not config_written:
        write_config(run.dir, run.cfg)
    ck = _load_checkpoint(run)
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


def _write_configs(runs: list[Run]) -> bool:
    """Write every run's config for the pack at once (with K runs, one at a time was a third of a short pack's
    time: each file's create and fsync in turn). False when a run's config could not be written: then each run
    writes its own in `_prepare`, so the run at fault fails alone. A full disk or unwritable folder raises."""
    try:
        write_configs([(run.dir, run.cfg) for run in runs])
        return True
    except Exception as e:
        if isinstance(e, OSError) and storage_problem(e):
            raise
        return False


def _train_pack(runs: list[Run], should_stop: Callable[[], bool], progress: bool) -> None:
    """Checkpoint-aware training of one pack; groups its runs by the step they resume from.

    Should a pack of several runs crash, each of its unfinished runs is trained again alone (from its last
    checkpoint), so that one bad run fails by itself and the others finish (a model's trajectory does not depend
    on its pack, so they finish with the same numbers)."""
    starts: dict[int, list[tuple[Run, dict | None]]] = {}
    written = _write_configs(runs)
    for run in runs:
        try:
            ck = _prepare(run, len(runs), written)
            starts.setdefault(ck["step"] if ck else 0, []).append((run, ck))
        except OSError as e:
            if storage_problem(e):
                raise
            _fail(run, e)
        except Exception as e:
            _fail(run, e)
    for start, members in sorted(starts.items()):
        sub = [r for r, _ in members]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wandb-init") as wandb_thread:
            error = _train_group(sub, start, [ck for _, ck in members], wandb_thread, should_stop, progress)
        if error is None:
            continue
        left = [r for r in sub if r.summary.get("status") not in FINISHED]
        if len(left) == 1:
            _fail(left[0], error)
            continue
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
    sub: list[Run],
    start: int,
    checkpoints: list,
    wandb_thread: ThreadPoolExecutor,
    should_stop: Callable[[], bool],
    progress: bool,
) -> Exception | None:
    """Train runs that resume from the same step; returns the exception that crashed the pack, if any (its
    finished runs keep their results). Storage errors (full disk, read-only folder) and interruptions raise."""
    try:
        shared: dict = {}  # one online failure sends the rest of the pack offline
        for r in sub:  # wandb.mode=disabled: no tracker, and no wandb id to make and fsync per run
            off = r.cfg["wandb"]["mode"] == "disabled"
            r.tracker = Tracker() if off else Tracker.start(wandb_thread, shared=shared, **tracker_args(r))
        trainer = Trainer(sub, start, checkpoints, should_stop=should_stop, progress=progress)
        trainer.run()
    except Interrupted:
        for r in sub:
            r.tracker.finish({"status": "requeued"}, exit_code=0)
        raise
    except KeyboardInterrupt:
        for r in sub:  # a second Ctrl-C: no new checkpoint, but the summary must not claim it is training
            if r.summary.get("status") not in FINISHED:
                _mark_interrupted(r)
        raise
    except Exception as e:
        if storage_problem(e):
            raise
        for r in sub:
            if r.summary.get("status") not in FINISHED:
                r.tracker.finish({"status": "failed"}, exit_code=1)
        return e
    return None


def _mark_interrupted(run: Run) -> None:
    """Say in summary.json that the run stopped on request and resumes from its last checkpoint."""
    previous, _ = read_summary(run.dir.summary)
    base = previous if previous is not None else {"step": 0}
    write_json(run.dir.summary, summary_record(base, run_id=run.run_id, name=run.cfg.get("name"), status="interrupted"))


def tracker_args(run: Run) -> dict:
    """Tracker.start's arguments for a run: its own wandb id (random once, kept in the run folder, so the same
    config in two sweeps or two students' folders never shares a wandb run, and a resume continues it)."""
    w = run.cfg["wandb"]
    return dict(
        run_id=wandb_id(run.dir),
        run_dir=run.dir.root,
        group=run.cfg["name"],
        name=w.get("run_name") or run.run_id,
        config=dict(run.cfg, run_id=run.run_id, versions=provenance()),
        mode=w["mode"],
        project=w["project"],
        entity=w["entity"],
        tags=list(w["tags"]),
        init_timeout_s=w["init_timeout_s"],
    )


def wandb_id(d: RunDir) -> str:
    """The run's wandb id, made once (8 random base-36 characters, as wandb makes them) and kept in its folder."""
    try:
        existing = d.wandb_id.read_text().strip()
        if existing:
            return existing
    except OSError:
        pass
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    new = "".join(secrets.choice(alphabet) for _ in range(8))
    write_text(d.wandb_id, new + "\n")
    return new
