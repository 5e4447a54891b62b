"""`sweep status SWEEP [--watch [SECONDS]]`: one table of a sweep's runs, with counts by status.

Everything comes from the results on disk (sweep.json, each run's summary.json and error.txt). SLURM is asked
once per refresh, with ONE batched `sacct -j <ids> -X -n -P` call (squeue when sacct cannot answer, and to check
the tasks sacct knows only from a stale array-range record or not yet at all; sweep.launch.queue asks), only to
tell what the files cannot:

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
import platform
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweep.launch.queue import GONE, JobState, job_phase, slurm_states
from sweep.results import (
    CORRUPT,
    ENDED,
    check_sweep_dir,
    pid_alive,
    read_sweep_record,
    slurm_tasks,
)
from sweep.store import RunRecord, run_ids, scan

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
    "pruned",
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
    "pruned": "dim",
    "failed": "bold red",
    "lost": "bold red",
    CORRUPT: "bold red",
}
ACTIVE = ("pending", "queued", "running", "requeued")  # held is not: it waits for a person, not for time
ERROR_LINES = 3
MAX_ROWS = 500  # more runs than this: rows of finished-and-fine runs are left out (--all shows them)


# ----------------------------------------------------------------------------------------------- rows
def corrupt_note(summary_path: Path, why: str) -> str:
    """What to do about a run whose summary is corrupt: the same command trains it again from its checkpoint."""
    return f"{summary_path} is corrupt ({why}); run the same command again to train it again from its checkpoint"


def _error_tail(rec: RunRecord, n: int = ERROR_LINES) -> str:
    """The last lines of a failed run's traceback (its summary's, or error.txt in a run folder)."""
    text = (rec.summary or {}).get("traceback")
    if not isinstance(text, str) and rec.legacy is not None:
        try:
            text = (rec.legacy / "error.txt").read_text(errors="replace")
        except OSError:
            text = None
    lines = [ln.rstrip() for ln in (text or "").splitlines() if ln.strip()]
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


def _collapse_note(summary: dict) -> str:
    """Why a run is `collapsed`: its loss blew up and it ended no better than it began (it has no step at which
    it diverged: it trained to the end)."""
    if summary.get("diverged_step") is not None:  # a summary that names a step (written by hand, or older)
        return f"collapsed at step {summary['diverged_step']}{_loss(summary.get('diverged_loss'))}"
    first, peak, last = (summary.get(k) for k in ("first_loss", "peak_loss", "final_train_loss"))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (first, peak, last)) and first:
        return f"collapsed: loss peaked at {peak:.3g} ({peak / first:.0f}x its first, {first:.3g}), ended at {last:.3g}"
    return "collapsed: its loss blew up and ended no better than it began"


def gather(sweep_dir: Path | str, *, use_slurm: bool = True, all_runs: bool = True) -> dict[str, Any]:
    """The rows of the status table and the counts: {'rows': [...], 'counts': Counter, 'swept': [...],
    'slurm': 'sacct' | 'squeue' | None, 'name': str}. A corrupt summary.json is one `sweep: skipped` line on
    stderr and a `corrupt` row that says how to retrain the run."""
    sweep_dir = Path(sweep_dir)
    record = read_sweep_record(sweep_dir)
    swept, values = _swept_values(record)
    records = scan(sweep_dir)
    ids = run_ids(sweep_dir, record, all_runs=all_runs, records=records)
    tasks = slurm_tasks(record)
    now = time.time()
    rows = []
    for rid in ids:
        rec = records.get(rid)
        summary, problem = (rec.summary, rec.problem) if rec is not None else (None, None)
        row: dict[str, Any] = {
            "claim": rec.claim if rec is not None else None,
            "run_id": rid,
            "values": values.get(rid, {k: "" for k in swept}),
            "disk": None if summary is None else summary["status"],
            "step": None,
            "total": None,
            "loss": None,
            "note": "",
            "tasks": tasks.get(rid, []),
            "age": None,
            "started": rec is not None,
        }
        row["task"] = row["tasks"][-1] if row["tasks"] else None
        if problem:
            row.update(disk=CORRUPT, note=corrupt_note(rec.summary_path, problem))
        if summary is not None:
            raw = summary.get("slurm_job_id")
            row.update(
                step=summary.get("step"),
                total=summary.get("total_steps"),
                loss=summary.get("final_train_loss"),
                raw_job=str(raw) if isinstance(raw, (str, int)) and raw != "" else None,
            )
            if rec.mtime is not None:
                row["age"] = now - rec.mtime
            if row["disk"] == "failed":
                row["note"] = _error_tail(rec) or str(summary.get("error") or "")
            elif row["disk"] == "diverged":
                at, loss = summary.get("diverged_step"), _loss(summary.get("diverged_loss"))
                row["note"] = f"diverged at step {at}{loss}"
            elif row["disk"] == "collapsed":
                row["note"] = _collapse_note(summary)
            elif row["disk"] == "interrupted":
                row["note"] = "stopped on request; run the same command again to resume from its checkpoint"
        rows.append(row)

    states, source = {}, None
    if use_slurm:
        wanted = [t for r in rows if r["disk"] not in (*ENDED, CORRUPT) for t in r["tasks"]]
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


def _process_gone(r: dict) -> bool:
    """True (with a note) when the run's claim names a process of this host that no longer exists."""
    claim = r.get("claim") or {}
    if claim.get("host") != platform.node() or pid_alive(claim.get("pid")):
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
    if disk in (*ENDED, CORRUPT):
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


def render(info: dict, only: Sequence[str] | None = None, max_rows: int | None = MAX_ROWS, width: int | None = None):
    """The status table. Where it would not fit `width` columns (an 80-column terminal or pipe, many swept
    keys), the swept values share one wrapped column and each note is a line under the table, so no column
    (the note, the status) is cropped away."""
    from rich import box
    from rich.console import Group
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
    rows = [r for r in info["rows"] if not only or r["status"] in only]
    compact = width is not None and _table_width(info["swept"], rows) > width
    t.add_column("run_id", style="dim", no_wrap=True)
    if compact:
        t.add_column("config", overflow="fold")
    else:
        for k in info["swept"]:
            t.add_column(k, no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("step", justify="right", no_wrap=True)
    t.add_column("train loss", justify="right", no_wrap=True)
    if not compact:
        t.add_column("note", overflow="fold", max_width=80)
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:  # a huge sweep: the runs that need a look first
        keep = [r for r in rows if r["status"] != "done"]
        hidden = len(rows) - len(keep)
        rows = keep
        if len(rows) > max_rows:
            hidden += len(rows) - max_rows
            rows = rows[:max_rows]
        t.caption += f" - {hidden} rows not shown (done ones first; --all shows every run)"
    notes = []
    for r in rows:
        step = "-" if r["step"] is None else f"{r['step']}/{r['total'] if r['total'] is not None else '?'}"
        values = [r["values"].get(k, "") for k in info["swept"]]
        note = Text(r["note"], style="red" if r["status"] in ("failed", "lost", "held", CORRUPT) else "dim")
        if compact:
            values = [" ".join(f"{_short(k)}={v}" for k, v in zip(info["swept"], values))]
            if r["note"]:
                notes.append(Text.assemble((f"{r['run_id']}: ", "dim"), note))
        status = Text(r["status"], style=STYLE.get(r["status"], ""))
        t.add_row(r["run_id"], *values, status, step, _fmt(r["loss"]), *([] if compact else [note]))
    return Group(t, *notes) if notes else t


def _short(key: str) -> str:
    """`optimizer.name` -> `optimizer`, `init.std` stays: a compact table's config column."""
    return key.removesuffix(".name")


def _table_width(swept: Sequence[str], rows: Sequence[dict]) -> int:
    """Columns the full table needs: each no-wrap column at its widest, a note of up to 30, and rich's padding."""
    cols = [
        max([len("run_id"), *(len(r["run_id"]) for r in rows)]),
        *(max([len(k), *(len(str(r["values"].get(k, ""))) for r in rows)]) for k in swept),
        max([len("status"), *(len(r["status"]) for r in rows)]),
        len("12345/12345"),
        len("train loss"),
        min(30, max([4, *(len(r["note"] or "") for r in rows)])),
    ]
    return sum(cols) + 3 * len(cols) + 1


def _print_search(console: Any, sweep_dir: Path) -> None:
    """A search's trials by state and its best so far, under the table (only where the folder holds a study)."""
    from sweep.study import STUDY_FILE, describe

    if (Path(sweep_dir) / STUDY_FILE).is_file():
        console.print(describe(Path(sweep_dir) / STUDY_FILE), highlight=False)


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
        info = gather(sweep_dir, use_slurm=not a.no_slurm)
        console.print(render(info, only, None if a.all else MAX_ROWS, width=console.width))
        _print_search(console, sweep_dir)
        return
    interval = max(1.0, a.watch)
    try:
        while True:
            info = gather(sweep_dir, use_slurm=not a.no_slurm)
            if console.is_terminal:
                console.clear()
            console.print(render(info, only, None if a.all else MAX_ROWS, width=console.width))
            _print_search(console, sweep_dir)
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
