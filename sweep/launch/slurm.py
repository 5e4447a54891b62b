"""Submit a sweep's packs to SLURM as job arrays (through submitit), with a snapshot of the code they run.

    submit(cfgs, sweep_dir)   skip finished runs, pack the rest, snapshot the code, queue ONE array per
                              MaxArraySize packs, record the job ids in sweep.json and return at once
                              (or wait, with cluster.wait=true)

Each array task runs sweep.launch.worker.PackJob (train one pack, requeue on preemption); the batch script this
module writes traps a stop signal from its first line, for the worker to find (see sweep.launch.worker). What
the queue holds is asked through sweep.launch.queue.

Code version: the tasks import the package from its snapshot (sweep.launch.snapshot) through PYTHONPATH and
srun's working directory, so that neither the editable install nor a `sweep/` folder in the submission directory
wins, and editing the checkout after submitting changes nothing that is queued or requeued.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import submitit

from sweep.launch.queue import active_tasks, max_array_size, wait_for_jobs
from sweep.launch.snapshot import snapshot_code
from sweep.launch.worker import EARLY_TRAP, PREEMPT_MARK_ENV, PackJob
from sweep.packing import AUTO_PACK_CPU, AUTO_PACK_GPU, plan_packs
from sweep.results import FINISHED, SweepDir, read_json, slurm_tasks, write_json
from sweep.store import scan


def _task_python() -> str:
    """submitit's `python` command (it appends `-u -m submitit.core._submit <folder>`, which here only
    supplies the folder as the last argument): this interpreter, running EARLY_TRAP first."""
    return f"{shlex.quote(sys.executable)} -u -c {shlex.quote(EARLY_TRAP)}"


def _early_trap_setup(folder: Path) -> list[str]:
    """The batch script's first setup lines: name this task's marker (per job id, which a requeue keeps, so
    any stale marker is removed first) and trap the stop signal in the shell, recording it there."""
    mark = shlex.quote(str(folder)) + '/"${SLURM_JOB_ID:-$$}".preempted'
    return [
        "# sweep: a stop signal before the task's Python is ready is recorded, then requeued by PackJob",
        f"export {PREEMPT_MARK_ENV}={mark}",
        f'rm -f "${PREEMPT_MARK_ENV}"',
        f'trap \': > "${PREEMPT_MARK_ENV}"\' "${{SUBMITIT_PREEMPT_SIGNAL:-USR2}}"',
    ]


# ---------------------------------------------------------------------------------------------- the cluster
def _executor(cluster: dict, sweep_dir: Path, code_dir: Path) -> submitit.AutoExecutor:
    """An executor with every ClusterConfig field mapped to its submitit parameter; unset (None/0) ones omitted."""
    ex = submitit.AutoExecutor(
        folder=SweepDir(sweep_dir).submitit,
        cluster="slurm",
        slurm_max_num_timeout=int(cluster.get("max_num_timeout") or 0),
        slurm_python=_task_python(),
    )
    params: dict[str, Any] = {"name": sweep_dir.name}
    for key, param, cast in (
        ("timeout_min", "timeout_min", int),
        ("cpus_per_task", "cpus_per_task", int),
        ("mem_gb", "mem_gb", float),
        ("gpus_per_node", "gpus_per_node", int),
        ("partition", "slurm_partition", str),
        ("account", "slurm_account", str),
        ("qos", "slurm_qos", str),
        ("constraint", "slurm_constraint", str),
        ("array_parallelism", "slurm_array_parallelism", int),
    ):
        value = cluster.get(key)
        if value not in (None, 0, ""):
            params[param] = cast(value)
    if params.get("mem_gb") is not None and params["mem_gb"] == int(params["mem_gb"]):
        params["mem_gb"] = int(params["mem_gb"])
    if cluster.get("additional_parameters"):
        params["slurm_additional_parameters"] = dict(cluster["additional_parameters"])
    code = shlex.quote(str(code_dir))
    params["slurm_setup"] = [
        *_early_trap_setup(Path(ex.folder)),
        *cluster.get("setup", []),
        "# sweep: run the code snapshot taken at submission",
        f"export PYTHONPATH={code}${{PYTHONPATH:+:$PYTHONPATH}}",
    ]
    # `python -m` puts its working directory first on sys.path: start the task inside the snapshot, so a
    # `sweep/` folder in the submission directory cannot shadow it (PackJob goes back to the submission dir).
    params["slurm_srun_args"] = ["--chdir", str(code_dir)]
    ex.update_parameters(**params)
    return ex


# ---------------------------------------------------------------------------------------------- submit
def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _pack_arg(cfg: dict) -> int | str:
    p = cfg["pack"]
    return p if isinstance(p, int) and not isinstance(p, bool) else "auto"


def _task_pack_size(cfg: dict) -> int:
    """Runs per array task: the user's pack, or for pack=auto the runner's cap for the task's device. The
    submitting machine cannot size it from memory (it is not the GPU node); the task itself splits its pack
    further if the models do not fit the device it lands on (train_runs(pack="auto"))."""
    p = _pack_arg(cfg)
    if isinstance(p, int):
        return p
    return AUTO_PACK_GPU if int(cfg["cluster"].get("gpus_per_node") or 0) > 0 else AUTO_PACK_CPU


def _queued_elsewhere(record: dict, active: dict[str, str]) -> dict[str, str]:
    """run_id -> task id, for runs of earlier submissions of this sweep whose array task is still queued/running."""
    out: dict[str, str] = {}
    for rid, tasks in slurm_tasks(record).items():
        live = [t for t in tasks if t in active]
        if live:
            out[rid] = live[-1]
    return out


def submit(cfgs: list[dict], sweep_dir: Path) -> list[dict]:
    """Queue every unfinished config of the sweep as packs in SLURM job arrays; returns one dict per config,
    in order: {run_id, status: queued or the status of a finished run (FINISHED), slurm_job_id}."""
    from sweep.config import run_id as config_run_id

    t0 = time.perf_counter()
    sweep_dir = Path(sweep_dir).resolve()
    record_path = SweepDir(sweep_dir).record
    record = read_json(record_path) or {}
    ids = [config_run_id(c) for c in cfgs]
    results: list[dict] = [{"run_id": i, "status": None, "slurm_job_id": None} for i in ids]

    active = active_tasks()
    elsewhere = _queued_elsewhere(record, active)
    pending: list[int] = []
    records = scan(sweep_dir)
    for k in range(len(cfgs)):
        rec = records.get(ids[k])
        if rec is not None and rec.status in FINISHED:
            results[k]["status"] = rec.status
        elif ids[k] in elsewhere:
            results[k].update(status="queued", slurm_job_id=elsewhere[ids[k]])
        else:
            pending.append(k)

    jobs_by_array: dict[str, int] = {}
    first_logs: dict[str, Path] = {}
    if pending:
        before = _entries(sweep_dir)
        code_dir = snapshot_code(sweep_dir)
        max_array = max_array_size()
        entry: dict[str, Any] = {
            "time": _now(),
            "job_ids": [],
            "code": str(code_dir),
            "cluster": cfgs[0]["cluster"].get("name"),
            "max_array_size": max_array,
            "queued": 0,
            "packs": [],
        }
        # configs that share cluster settings and pack size go to the same array(s)
        groups: dict[str, list[int]] = {}
        for k in pending:
            key = json.dumps([cfgs[k]["cluster"], _pack_arg(cfgs[k])], sort_keys=True, default=str)
            groups.setdefault(key, []).append(k)
        try:
            for members in groups.values():
                _submit_group(
                    cfgs, members, ids, sweep_dir, code_dir, max_array, entry, results, jobs_by_array, first_logs
                )
        except BaseException as e:
            if not entry["job_ids"]:  # nothing queued: leave no snapshot or submitit files that nothing uses
                _remove_new_entries(sweep_dir, before)
            if not isinstance(e, submitit.core.utils.FailedJobError):
                raise
            from sweep.errors import ConfigError

            reason = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
            done = (
                f"{len(entry['job_ids'])} array(s) were queued before: {', '.join(entry['job_ids'])}"
                if entry["job_ids"]
                else "nothing was submitted"
            )
            raise ConfigError(f"sbatch refused the job array: {reason} ({done})") from None
        finally:
            if entry["job_ids"]:  # record whatever was queued, even if a later chunk failed
                record = read_json(record_path) or record
                record.setdefault("slurm", []).append(entry)
                write_json(record_path, record)

    _print_submission(cfgs, results, sweep_dir, jobs_by_array, first_logs, time.perf_counter() - t0)
    if any(c["cluster"].get("wait", False) for c in cfgs[:1]):
        waiting = sorted({r["slurm_job_id"].split("_")[0] for r in results if r["status"] == "queued"})
        if waiting:
            print(f"sweep: waiting for job(s) {', '.join(waiting)} (cluster.wait=true) ...", flush=True)
            wait_for_jobs(waiting)
        records = scan(sweep_dir)
        for k in range(len(cfgs)):
            rec = records.get(ids[k])
            results[k]["status"] = (rec.status if rec is not None else None) or "missing"
        counts = Counter(r["status"] for r in results)
        print(
            f"sweep: {dict(counts)} after {time.perf_counter() - t0:.0f} s; "
            f"`sweep status {shlex.quote(str(sweep_dir))}` for the table"
        )
    return results


def _entries(sweep_dir: Path) -> set[Path]:
    """What a submission may add to the sweep folder: its code/ and submitit/ folders and their entries."""
    layout = SweepDir(sweep_dir)
    out = set()
    for folder in (layout.code, layout.submitit):
        if folder.exists():
            out |= {folder, *folder.iterdir()}
    return out


def _remove_new_entries(sweep_dir: Path, before: set[Path]) -> None:
    """Remove what _entries() lists now but did not list in `before` (this submission's leftovers)."""
    for p in sorted(_entries(sweep_dir) - before, key=lambda q: len(q.parts), reverse=True):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()


def undo_unqueued_record(sweep_dir: Path, previous: dict | None) -> None:
    """After a failed submission: if it queued nothing (sweep.json gained no `slurm` entry), put back the
    sweep.json that was there before it (`previous`; None: there was none, so remove it, and the sweep folder
    if that leaves it empty), so that `sweep status` shows no runs that will never run."""
    path = SweepDir(sweep_dir).record
    now = read_json(path) or {}
    if len(now.get("slurm", [])) > len((previous or {}).get("slurm", [])):
        return  # something was queued: the record is needed to follow it
    if previous is not None:
        write_json(path, previous)
        return
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        Path(sweep_dir).rmdir()  # only if empty: run folders made before this submission stay


def _submit_group(
    cfgs: list[dict],
    members: list[int],
    ids: list[str],
    sweep_dir: Path,
    code_dir: Path,
    max_array: int,
    entry: dict,
    results: list[dict],
    jobs_by_array: dict[str, int],
    first_logs: dict[str, Path],
) -> None:
    """Pack the configs `members` (same cluster settings) and queue them as arrays of <= max_array tasks;
    first_logs gets each array's first task's stdout log (`<array>_0_0_log.out`, or `<job>_0_log.out` when
    a single pack was submitted as a plain job)."""
    index_of: dict[int, int] = {}
    job_cfgs = []
    for k in members:
        c = dict(cfgs[k], out_dir=str(Path(cfgs[k]["out_dir"]).resolve()))  # the task's cwd may differ
        index_of[id(c)] = k
        job_cfgs.append(c)
    packs = plan_packs(job_cfgs, _task_pack_size(cfgs[members[0]]))
    ex = _executor(cfgs[members[0]]["cluster"], sweep_dir, code_dir)
    job = PackJob(os.getcwd(), auto=_pack_arg(cfgs[members[0]]) == "auto")
    for start in range(0, len(packs), max_array):
        chunk = packs[start : start + max_array]
        with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's error; it is raised anyway
            jobs = ex.map_array(job, chunk)
        array_id = jobs[0].job_id.split("_")[0]
        jobs_by_array[array_id] = len(chunk)
        first_logs[array_id] = Path(jobs[0].paths.stdout)
        entry["job_ids"].append(array_id)
        for j, p in zip(jobs, chunk):
            index = int(j.job_id.split("_")[1]) if "_" in j.job_id else 0  # a single pack is a plain job
            entry["packs"].append(
                {
                    "job_id": j.job_id,
                    "array_job_id": array_id,
                    "index": index,
                    "run_ids": [ids[index_of[id(c)]] for c in p],
                }
            )
            entry["queued"] += len(p)
            for c in p:
                results[index_of[id(c)]].update(status="queued", slurm_job_id=j.job_id)


def _print_submission(
    cfgs: Sequence[dict],
    results: list[dict],
    sweep_dir: Path,
    arrays: dict[str, int],
    first_logs: dict[str, Path],
    dt: float,
) -> None:
    """The submission's summary and follow-up commands (every path shell-quoted: they are copy-pasted)."""
    counts = Counter(r["status"] for r in results)
    finished = sum(counts.get(status, 0) for status in FINISHED)
    n_queued_now = sum(arrays.values())
    skipped = f"{finished} already finished"
    others = counts.get("queued", 0) - sum(
        1 for r in results if r["status"] == "queued" and r["slurm_job_id"].split("_")[0] in arrays
    )
    if others:
        skipped += f", {others} still queued by an earlier submission"
    print(f"sweep: {len(cfgs)} runs -> {sweep_dir}")
    if arrays:
        items = [f"{a} ({n} task{'s' * (n != 1)})" for a, n in arrays.items()]
        tasks = ", ".join(items if len(items) <= 4 else [*items[:3], f"... {items[-1]}"])
        what = "SLURM job array" if len(arrays) == 1 else f"{len(arrays)} SLURM job arrays"
        print(f"sweep: queued {n_queued_now} pack(s) as {what} {tasks} in {dt:.1f} s ({skipped})")
        first = next(iter(arrays))
        print(
            "sweep: follow it with\n"
            f"  squeue --me\n"
            f"  sweep status {shlex.quote(str(sweep_dir))}\n"
            f"  tail -f {shlex.quote(str(first_logs[first]))}"
        )
    else:
        print(f"sweep: nothing to submit ({skipped})")
        if finished:  # the same command again (on another cluster, after a fix): say how to train afresh
            print(
                f"sweep: finished runs are kept in {shlex.quote(str(sweep_dir))}; to train them again, give the "
                "sweep a new folder: add name=<new name>"
            )
