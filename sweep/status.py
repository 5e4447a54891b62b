"""`sweep status SWEEP [--watch [SECONDS]]`: one table of a sweep's runs, with counts by status.

Everything comes from the results on disk (sweep.json, each run's summary.json and error.txt). SLURM is asked
once per refresh, with ONE batched `sacct -j <ids> -X -n -P` call (squeue when sacct cannot answer, and to check
the tasks sacct knows only from a stale array-range record or not yet at all), only to tell what the files
cannot:

    no folder/summary yet   queued (its pack's task is pending), held (pending, but held: it never starts
                            without `scontrol release`), running (the task started, no checkpoint yet),
                            lost (its task ended before the run wrote anything), or pending (no SLURM job
                            known: not submitted, or a local sweep not there yet)
    summary says running    running (the job that wrote it, or a later one, runs); requeued (its task is
                            pending again after a preemption/time limit); held; or lost (its task ended - node
                            failure, cancel, time limit - without the run writing a final status)
    summary is corrupt      corrupt: delete the run folder to retrain the run

Without SLURM (no sacct/squeue, or a local sweep) that part is skipped and the files' statuses are shown.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from sweep.collect import CORRUPT, check_sweep_dir, parse_summary, read_sweep_record, report_skipped, run_ids
from sweep.results import BLOWN_UP, FINISHED

ORDER = (
    "pending",
    "queued",
    "held",
    "running",
    "requeued",
    "interrupted",
    "done",
    "diverged",
    "collapsed",
    "failed",
    "lost",
    CORRUPT,
)
STYLE = {
    "pending": "dim",
    "queued": "cyan",
    "held": "bold yellow",
    "running": "blue",
    "requeued": "magenta",
    "interrupted": "yellow",
    "done": "green",
    "diverged": "yellow",
    "collapsed": "yellow",
    "failed": "bold red",
    "lost": "bold red",
    CORRUPT: "bold red",
}
ACTIVE = ("pending", "queued", "running", "requeued")  # held is not: it waits for a person, not for time
# A run with one of these statuses on disk is over: SLURM cannot tell more about it.
ENDED_ON_DISK = (*FINISHED, "failed")
SLURM_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD", "STOPPED"}
# Held: the task stays pending until someone runs `scontrol release` (squeue/sacct reason JobHeldUser,
# JobHeldAdmin, launch_failed_requeued_held; state REQUEUE_HOLD or SPECIAL_EXIT).
SLURM_HELD = {"REQUEUE_HOLD", "SPECIAL_EXIT"}
# Not a SLURM state: sacct knew the task only from a stale range record (or not at all) and squeue no longer
# lists it, so it has ended - how, accounting does not say yet.
GONE = "GONE"
ERROR_LINES = 3
MAX_ROWS = 500  # more runs than this: rows of finished-and-fine runs are left out (--all shows them)


# ----------------------------------------------------------------------------------------------- SLURM
class JobState(NamedTuple):
    """What SLURM says of one job or array task: STATE, the pending reason ("" when none), and whether the
    line was the task's own (False: expanded from an array's pending-range record, which slurmdbd keeps for a
    while after tasks have started or even failed)."""

    state: str
    reason: str = ""
    exact: bool = True


def expand_job_id(job_id: str) -> list[str]:
    """`12_[0-2,5%4]` -> [12_0, 12_1, 12_2, 12_5]; any other id unchanged ([12_3], [12])."""
    m = re.fullmatch(r"(\d+)_\[([^\]]*)\]", job_id.strip())
    if not m:
        return [job_id.strip()]
    base, spec = m.group(1), m.group(2).split("%")[0]
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        step = 1
        if ":" in part:
            part, s = part.split(":", 1)
            step = int(s)
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(f"{base}_{i}" for i in range(int(a), int(b) + 1, step))
        else:
            out.append(f"{base}_{part}")
    return out


def _reason(text: str) -> str:
    text = text.strip()
    return "" if text in ("None", "(null)", "") else text.strip("()")


def parse_sacct_states(text: str) -> dict[str, JobState]:
    """`JobID|JobIDRaw|State[|Reason]` lines (sacct -n -P -X) -> {task id: JobState, raw id: JobState}; steps
    ignored. A task's own line wins over a pending-range line (`12_[3-5%1]|12|PENDING`), whose tasks are marked
    exact=False: slurmdbd keeps the range record of an array's not-yet-started tasks for a while after some of
    them have started (or already failed)."""
    states: dict[str, JobState] = {}
    ranges: list[tuple[str, JobState]] = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0] or "." in parts[0]:
            continue
        job = parts[0]
        state_i = 2 if len(parts) >= 4 else len(parts) - 1
        state = (parts[state_i].split() or [""])[0]  # "CANCELLED by 123" -> CANCELLED
        reason = _reason(parts[3]) if len(parts) >= 4 else ""
        if "[" in job:
            ranges.append((job, JobState(state, reason, exact=False)))
            continue
        states[job] = JobState(state, reason)
        raw = parts[1] if len(parts) >= 3 else ""
        if raw:
            states.setdefault(raw, JobState(state, reason))
    for job, js in ranges:
        for j in expand_job_id(job):
            states.setdefault(j, js)
    return states


def parse_sacct(text: str) -> dict[str, str]:
    """`parse_sacct_states` as {id: STATE}."""
    return {k: v.state for k, v in parse_sacct_states(text).items()}


def parse_squeue_states(text: str) -> dict[str, JobState]:
    """`%i|%T[|%r]` lines (squeue -h -r) -> {task id: JobState}."""
    states = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            js = JobState(parts[1].strip(), _reason(parts[2]) if len(parts) >= 3 else "")
            for j in expand_job_id(parts[0]):
                states[j] = js
    return states


def parse_squeue(text: str) -> dict[str, str]:
    """`parse_squeue_states` as {task id: STATE}."""
    return {k: v.state for k, v in parse_squeue_states(text).items()}


def job_phase(js: JobState | None) -> str | None:
    """What a job's state means for its runs: held (never starts without `scontrol release`), waiting,
    running, ended, or None (unknown)."""
    if js is None or not js.state:
        return None
    if js.state in SLURM_HELD or (js.state in SLURM_WAITING and "held" in js.reason.lower()):
        return "held"
    if js.state in SLURM_WAITING:
        return "waiting"
    if js.state in SLURM_RUNNING:
        return "running"
    return "ended"


def cross_check(sacct: dict[str, JobState], squeue: dict[str, JobState], asked: Iterable[str]) -> dict[str, JobState]:
    """sacct's answer corrected by squeue's (the controller's live view) for each asked task that sacct knows
    only from a range record or not at all: squeue's state when it lists the task, else GONE (it has ended,
    and accounting has not caught up: a task that failed at once shows as pending in sacct for a while)."""
    out = dict(sacct)
    for j in asked:
        js = sacct.get(j)
        if js is not None and js.exact:
            continue
        if j in squeue:
            out[j] = squeue[j]
        elif js is not None:  # a task sacct never heard of: maybe not this cluster's; say nothing
            out[j] = JobState(GONE, "", exact=False)
    return out


def _run(cmd: list[str], timeout: float, env: dict) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.SubprocessError):
        return None


SACCT_FORMAT = "--format=JobID,JobIDRaw,State,Reason"
SQUEUE_FORMAT = "%i|%T|%r"


def _squeue(timeout: float, env: dict) -> dict[str, JobState] | None:
    if not shutil.which("squeue"):
        return None
    p = _run(["squeue", "-h", "-r", "--me", "-o", SQUEUE_FORMAT], timeout, env)
    return parse_squeue_states(p.stdout) if p is not None and p.returncode == 0 else None


def slurm_states(job_ids: Iterable[str], timeout: float = 30) -> tuple[dict[str, JobState], str | None]:
    """({job or task id: JobState}, the source) for `job_ids` from one sacct call; ({}, None) without SLURM.

    Falls back to squeue (jobs still queued or running only) when sacct is missing or fails (no accounting).
    Asks squeue too when sacct knows an asked task only from a range record or not at all (`cross_check`).
    """
    wanted = sorted({str(j) for j in job_ids if j})
    ids = sorted({j.split("_")[0].split(".")[0] for j in wanted})
    if not ids:
        return {}, None
    env = dict(os.environ, SLURM_BITSTR_LEN="0")  # full task ranges of pending arrays, never "..."
    if shutil.which("sacct"):
        cmd = ["sacct", "-j", ",".join(ids), SACCT_FORMAT, "-X", "-n", "-P"]
        p = _run(cmd, timeout, env)
        if p is not None and p.returncode != 0 and "field" in (p.stderr or "").lower():
            p = _run([*cmd[:3], "--format=JobID,JobIDRaw,State", *cmd[4:]], timeout, env)  # an old sacct
        if p is not None and p.returncode == 0:
            states = parse_sacct_states(p.stdout)
            if any(not (states.get(j) and states[j].exact) for j in wanted):
                live = _squeue(timeout, env)
                if live is not None:
                    states = cross_check(states, live, wanted)
            return states, "sacct"
    live = _squeue(timeout, env)
    if live is not None:
        # squeue lists only live jobs: every other asked id has ended (state unknown)
        return {k: v for k, v in live.items() if k.split("_")[0] in ids}, "squeue"
    return {}, None


def pack_tasks(record: dict) -> dict[str, str]:
    """run_id -> the SLURM task id (`123_4`, or `123` for a plain job) of its latest submission in sweep.json."""
    return {rid: tasks[-1] for rid, tasks in all_pack_tasks(record).items()}


def all_pack_tasks(record: dict) -> dict[str, list[str]]:
    """run_id -> the SLURM task ids of every submission of it in sweep.json, oldest first (a sweep submitted
    again while running lists a run twice). Read defensively: an entry or pack lacking a field is skipped."""
    out: dict[str, list[str]] = {}
    subs = record.get("slurm") or []
    if isinstance(subs, dict):
        subs = [subs]
    for sub in subs if isinstance(subs, list) else []:
        if not isinstance(sub, dict):
            continue
        packs = sub.get("packs") or []
        for p in packs if isinstance(packs, list) else []:
            if not isinstance(p, dict):
                continue
            task = p.get("job_id")
            if not task and p.get("array_job_id") is not None and p.get("index") is not None:
                task = f"{p['array_job_id']}_{p['index']}"
            rids = p.get("run_ids") or []
            for rid in rids if task and isinstance(rids, list) else []:
                tasks = out.setdefault(str(rid), [])
                if str(task) not in tasks:
                    tasks.append(str(task))
    return out


# ----------------------------------------------------------------------------------------------- rows
def _read_claim(path: Path) -> dict | None:
    """The run's claim (host, pid of the process training it), or None when absent or unreadable (a claim is
    advisory: a bad one only means the process cannot be checked)."""
    import json

    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _read_summary(path: Path) -> tuple[dict | None, str | None]:
    """(summary, None); (None, None) when there is none yet; (None, why) when it is corrupt."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        return None, f"unreadable ({type(e).__name__})"
    return parse_summary(text)


def corrupt_note(run_dir: Path, why: str) -> str:
    """What to do about a run whose summary.json is corrupt. Never "run the same command again": the run would
    read the same file; deleting the folder makes that command train the run afresh."""
    return f"summary.json is corrupt ({why}); delete the run folder to retrain it: rm -r {shlex.quote(str(run_dir))}"


def _error_tail(path: Path, n: int = ERROR_LINES) -> str:
    try:
        lines = [ln.rstrip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _swept_values(record: dict) -> tuple[list[str], dict[str, dict[str, str]]]:
    swept = [str(k).lstrip("+~") for k in record.get("swept") or []]
    values: dict[str, dict[str, str]] = {}
    for r in record.get("runs") or []:
        if not isinstance(r, dict) or "run_id" not in r:
            continue
        kv = {}
        overrides = r.get("overrides") or []
        for o in overrides if isinstance(overrides, list) else []:
            k, _, v = str(o).partition("=")
            kv[k.lstrip("+~")] = v
        values[str(r["run_id"])] = {k: kv.get(k, "") for k in swept}
    return swept, values


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _loss(x: Any) -> str:
    return f" (loss {x:.3g})" if isinstance(x, (int, float)) and not isinstance(x, bool) else ""


def gather(sweep_dir: Path | str, *, use_slurm: bool = True, all_runs: bool = True) -> dict[str, Any]:
    """The rows of the status table and the counts: {'rows': [...], 'counts': Counter, 'swept': [...],
    'slurm': 'sacct' | 'squeue' | None, 'name': str}. A corrupt summary.json is one `sweep: skipped` line on
    stderr and a `corrupt` row that says how to retrain the run."""
    sweep_dir = Path(sweep_dir)
    record = read_sweep_record(sweep_dir)
    swept, values = _swept_values(record)
    ids = run_ids(sweep_dir, record, all_runs=all_runs)
    tasks = all_pack_tasks(record)
    now = time.time()
    rows = []
    for rid in ids:
        d = sweep_dir / rid
        s, problem = _read_summary(d / "summary.json")
        row: dict[str, Any] = {
            "claim": _read_claim(d / ".claim.json"),
            "run_id": rid,
            "values": values.get(rid, {k: "" for k in swept}),
            "disk": None if s is None else s["status"],
            "step": None,
            "total": None,
            "loss": None,
            "note": "",
            "tasks": tasks.get(rid, []),
            "age": None,
            "started": (d / "config.yaml").exists(),
        }
        row["task"] = row["tasks"][-1] if row["tasks"] else None
        if problem:
            report_skipped(d / "summary.json", problem)
            row.update(disk=CORRUPT, note=corrupt_note(d, problem))
        if s is not None:
            raw = s.get("slurm_job_id")
            row.update(
                step=s.get("step"),
                total=s.get("total_steps"),
                loss=s.get("final_train_loss"),
                raw_job=str(raw) if isinstance(raw, (str, int)) and raw != "" else None,
            )
            try:
                row["age"] = now - (d / "summary.json").stat().st_mtime
            except OSError:
                pass
            if row["disk"] == "failed":
                row["note"] = _error_tail(d / "error.txt") or str(s.get("error") or "")
            elif row["disk"] in BLOWN_UP:
                row["note"] = f"{row['disk']} at step {s.get('diverged_step')}{_loss(s.get('diverged_loss'))}"
            elif row["disk"] == "interrupted":
                row["note"] = "stopped on request; run the same command again to resume from its checkpoint"
        rows.append(row)

    states, source = {}, None
    if use_slurm:
        wanted = [t for r in rows if r["disk"] not in (*ENDED_ON_DISK, CORRUPT) for t in r["tasks"]]
        wanted += [r["raw_job"] for r in rows if r["disk"] in ("running", "interrupted") and r.get("raw_job")]
        states, source = slurm_states(wanted)
        asked: bool | None = bool(wanted)
    else:
        asked = None

    for r in rows:
        r["status"] = _decide(r, states, source)
    counts = Counter(r["status"] for r in rows)
    return {
        "rows": rows,
        "counts": counts,
        "swept": swept,
        "slurm": source,
        "asked": asked,
        "name": record.get("name") or sweep_dir.name,
        "dir": str(sweep_dir),
    }


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: do not call it lost
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_gone(r: dict) -> bool:
    """True (with a note) when the run's claim names a process of this host that no longer exists."""
    claim = r.get("claim") or {}
    if claim.get("host") != platform.node() or _pid_alive(claim.get("pid")):
        return False
    r["note"] = (
        f"its process (pid {claim.get('pid')}) is gone without a final status; "
        "run the same command again to resume from the checkpoint"
    )
    return True


_WHY = {
    "NODE_FAIL": "node died",
    "TIMEOUT": "time limit",
    "OUT_OF_MEMORY": "out of memory",
    "PREEMPTED": "preempted",
    "BOOT_FAIL": "node failed to boot",
}


def _ended(job: str, state: str) -> str:
    if state == GONE:
        return f"job {job} is no longer queued or running (sacct has not recorded how it ended yet)"
    why = _WHY.get(state)
    return f"job {job} ended {state}{f' ({why})' if why else ''}"


def _jobs(r: dict, states: dict[str, JobState]) -> list[tuple[str, str, JobState]]:
    """(job id, phase, state) of every job SLURM knows for the run: the job that wrote its summary first
    (it is the one training it), then its submissions, latest first."""
    out, seen = [], set()
    for j in [r.get("raw_job"), *reversed(r["tasks"])]:
        if j and j not in seen and j in states:
            seen.add(j)
            out.append((j, job_phase(states[j]), states[j]))
    return out


def _decide(r: dict, states: dict[str, JobState], source: str | None) -> str:
    """The run's status from its files and, for runs the files leave open, what SLURM says of its jobs. Any
    running job wins (a duplicate submission's pending task does not make a running run "requeued"); then a
    held one (it never starts by itself); then a waiting one; then how the latest known job ended."""
    disk = r["disk"]
    if disk in (*ENDED_ON_DISK, CORRUPT):
        return disk
    jobs = _jobs(r, states)
    by_phase: dict[str, tuple[str, JobState]] = {}
    for j, phase, js in jobs:
        by_phase.setdefault(phase, (j, js))
    known = source is not None and (r["task"] or r.get("raw_job"))
    if "running" in by_phase:
        return "running"
    if "held" in by_phase:
        j, js = by_phase["held"]
        r["note"] = f"held ({js.reason or js.state}): it never starts by itself; scontrol release {shlex.quote(j)}"
        return "held"
    if disk == "interrupted":
        return "interrupted"
    if disk == "running":
        if "waiting" in by_phase:
            j, js = by_phase["waiting"]
            r["note"] = f"job {j} {js.state.lower()}; resumes from its checkpoint"
            return "requeued"
        if known and not jobs and source == "squeue":
            r["note"] = "its job is no longer queued or running, and the run wrote no final status"
            return "lost"
        if jobs:
            j, _, js = jobs[0]
            r["note"] = f"{_ended(j, js.state)}; no final status written"
            return "lost"
        if _process_gone(r):
            return "lost"
        if r["age"] is not None:
            r["note"] = f"last checkpoint {_age(r['age'])} ago"
        return "running"
    # no summary yet
    if "waiting" in by_phase:
        return "queued"
    if jobs or (known and source == "squeue"):
        j, _, js = jobs[0] if jobs else (r["task"], None, JobState(""))
        r["note"] = (
            f"{_ended(j, js.state)} before the run wrote anything"
            if js.state
            else f"its job {j} ended before the run wrote anything"
        )
        return "lost"
    if r["started"]:
        if _process_gone(r):
            return "lost"
        r["note"] = r["note"] or "started, no checkpoint yet"
        return "running"
    if known and source == "sacct":
        r["note"] = f"SLURM has no record of its job {r['task']} (yet)"
    return "pending"


# ----------------------------------------------------------------------------------------------- rendering
def _fmt(x: Any, spec: str = ".4g") -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return format(x, spec)
    return "-" if x is None else str(x)


def render(info: dict, only: Sequence[str] | None = None, max_rows: int | None = MAX_ROWS):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    counts = info["counts"]
    total = sum(counts.values())
    parts = [f"[{STYLE[s]}]{counts[s]} {s}[/]" for s in ORDER if counts.get(s)]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in ORDER]
    slurm = {"sacct": "SLURM: sacct", "squeue": "SLURM: squeue (ended jobs unknown)"}.get(
        info["slurm"] or "",
        {
            True: "SLURM unavailable (no sacct/squeue answer)",
            False: "no SLURM job to ask about",
            None: "SLURM not asked",
        }[info.get("asked")],
    )
    title = f"[bold]{info['name']}[/]: {total} runs - " + " · ".join(parts or ["none"])
    t = Table(
        title=title,
        caption=f"{info['dir']} ({slurm})",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        caption_justify="left",
    )
    t.add_column("run_id", style="dim", no_wrap=True)
    for k in info["swept"]:
        t.add_column(k, no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("step", justify="right", no_wrap=True)
    t.add_column("train loss", justify="right", no_wrap=True)
    t.add_column("note", overflow="fold", max_width=80)
    rows = [r for r in info["rows"] if not only or r["status"] in only]
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:  # a huge sweep: the runs that need a look first
        keep = [r for r in rows if r["status"] != "done"]
        hidden = len(rows) - len(keep)
        rows = keep
        if len(rows) > max_rows:
            hidden += len(rows) - max_rows
            rows = rows[:max_rows]
        t.caption += f" - {hidden} rows not shown (done ones first; --all shows every run)"
    for r in rows:
        step = "-" if r["step"] is None else f"{r['step']}/{r['total'] if r['total'] is not None else '?'}"
        t.add_row(
            r["run_id"],
            *[r["values"].get(k, "") for k in info["swept"]],
            Text(r["status"], style=STYLE.get(r["status"], "")),
            step,
            _fmt(r["loss"]),
            Text(r["note"], style="red" if r["status"] in ("failed", "lost", "held", CORRUPT) else "dim"),
        )
    return t


def main(argv: Sequence[str] | None = None) -> None:
    from rich.console import Console

    p = argparse.ArgumentParser(
        prog="sweep status",
        description="A sweep's runs by status (from the results on "
        "disk; SLURM is asked only to tell queued, running and lost runs apart).",
    )
    p.add_argument("sweep", help="the sweep folder (out_dir/<name>)")
    p.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=10.0,
        metavar="SECONDS",
        help="refresh every SECONDS (default 10) until every run has ended or Ctrl-C",
    )
    p.add_argument("--only", metavar="STATUS[,STATUS]", help="rows with these statuses only, e.g. failed,lost")
    p.add_argument("--no-slurm", action="store_true", help="do not ask SLURM")
    p.add_argument("--all", action="store_true", help=f"every run's row, even beyond {MAX_ROWS} runs")
    a = p.parse_args(list(argv) if argv is not None else None)
    sweep_dir = check_sweep_dir(a.sweep, "sweep status")
    only = [s.strip() for s in a.only.split(",")] if a.only else None
    console = Console()
    if a.watch is None:
        console.print(render(gather(sweep_dir, use_slurm=not a.no_slurm), only, None if a.all else MAX_ROWS))
        return
    interval = max(1.0, a.watch)
    try:
        while True:
            info = gather(sweep_dir, use_slurm=not a.no_slurm)
            if console.is_terminal:
                console.clear()
            console.print(render(info, only, None if a.all else MAX_ROWS))
            if info["rows"] and not any(info["counts"].get(s) for s in ACTIVE):
                held = info["counts"].get("held")
                console.print(
                    f"every run has ended or is held ({held} held: scontrol release starts them)"
                    if held
                    else "every run has ended"
                )
                return
            console.print(f"[dim]refreshing every {interval:g} s (Ctrl-C to stop)[/]")
            time.sleep(interval)
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    main()
