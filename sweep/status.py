"""`sweep status SWEEP [--watch [SECONDS]]`: one table of a sweep's runs, with counts by status.

Everything comes from the results on disk (sweep.json, each run's summary.json and error.txt). SLURM is asked
once per refresh, with ONE batched `sacct -j <ids> -X -n -P` call (squeue when sacct cannot answer), only to
tell what the files cannot:

    no folder/summary yet   queued (its pack's task is pending), running (the task started, no checkpoint yet),
                            or pending (no SLURM job known: not submitted, or a local sweep not there yet)
    summary says running    running; requeued (its task is pending again after a preemption/time limit); or
                            lost (its task ended - node failure, cancel, time limit - without the run writing
                            a final status)

Without SLURM (no sacct/squeue, or a local sweep) that part is skipped and the files' statuses are shown.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from sweep.collect import read_sweep_record, run_ids

ORDER = ("pending", "queued", "running", "requeued", "done", "diverged", "failed", "lost")
STYLE = {"pending": "dim", "queued": "cyan", "running": "blue", "requeued": "magenta", "done": "green",
         "diverged": "yellow", "failed": "bold red", "lost": "bold red"}
ACTIVE = ("pending", "queued", "running", "requeued")
SLURM_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD",
                 "SPECIAL_EXIT", "STOPPED"}
ERROR_LINES = 3
MAX_ROWS = 500          # more runs than this: rows of finished-and-fine runs are left out (--all shows them)


# ----------------------------------------------------------------------------------------------- SLURM
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


def parse_sacct(text: str) -> dict[str, str]:
    """`JobID|JobIDRaw|State` lines (sacct -n -P -X) -> {task id: STATE, raw id: STATE}; steps ignored.

    A task's own line wins over a pending-range line (`12_[3-5%1]|12|PENDING`): slurmdbd keeps the range
    record of an array's not-yet-started tasks for a while after some of them have started."""
    states: dict[str, str] = {}
    ranges: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0] or "." in parts[0]:
            continue
        job = parts[0]
        state = (parts[-1].split() or [""])[0]      # "CANCELLED by 123" -> CANCELLED
        if "[" in job:
            ranges.append((job, state))
            continue
        states[job] = state
        raw = parts[1] if len(parts) >= 3 else ""
        if raw:
            states.setdefault(raw, state)
    for job, state in ranges:
        for j in expand_job_id(job):
            states.setdefault(j, state)
    return states


def parse_squeue(text: str) -> dict[str, str]:
    """`%i|%T` lines (squeue -h -r) -> {task id: STATE}."""
    states = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            for j in expand_job_id(parts[0]):
                states[j] = parts[1].strip()
    return states


def slurm_states(job_ids: Iterable[str], timeout: float = 30) -> tuple[dict[str, str], str | None]:
    """({job or task id: STATE}, the source) for `job_ids` from one sacct call; ({}, None) without SLURM.

    Falls back to squeue (jobs still queued or running only) when sacct is missing or fails (no accounting).
    """
    ids = sorted({str(j).split("_")[0].split(".")[0] for j in job_ids if j})
    if not ids:
        return {}, None
    env = dict(os.environ, SLURM_BITSTR_LEN="0")     # full task ranges of pending arrays, never "..."
    if shutil.which("sacct"):
        try:
            p = subprocess.run(["sacct", "-j", ",".join(ids), "--format=JobID,JobIDRaw,State", "-X", "-n", "-P"],
                               capture_output=True, text=True, timeout=timeout, env=env)
            if p.returncode == 0:
                return parse_sacct(p.stdout), "sacct"
        except (OSError, subprocess.SubprocessError):
            pass
    if shutil.which("squeue"):
        try:
            p = subprocess.run(["squeue", "-h", "-r", "--me", "-o", "%i|%T"], capture_output=True, text=True,
                               timeout=timeout, env=env)
            if p.returncode == 0:
                states = parse_squeue(p.stdout)
                # squeue lists only live jobs: every other asked id has ended (state unknown)
                return {k: v for k, v in states.items() if k.split("_")[0] in ids}, "squeue"
        except (OSError, subprocess.SubprocessError):
            pass
    return {}, None


def pack_tasks(record: dict) -> dict[str, str]:
    """run_id -> the SLURM task id (`123_4`, or `123` for a plain job) of its latest submission in sweep.json.
    Read defensively: an entry or pack lacking a field is skipped."""
    out: dict[str, str] = {}
    subs = record.get("slurm") or []
    if isinstance(subs, dict):
        subs = [subs]
    for sub in subs if isinstance(subs, list) else []:
        if not isinstance(sub, dict):
            continue
        for p in sub.get("packs") or []:
            if not isinstance(p, dict):
                continue
            task = p.get("job_id")
            if not task and p.get("array_job_id") is not None and p.get("index") is not None:
                task = f"{p['array_job_id']}_{p['index']}"
            for rid in p.get("run_ids") or []:
                if task:
                    out[str(rid)] = str(task)
    return out


# ----------------------------------------------------------------------------------------------- rows
def _read_json(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"status": "unreadable"}


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
        for o in r.get("overrides") or []:
            k, _, v = str(o).partition("=")
            kv[k.lstrip("+~")] = v
        values[r["run_id"]] = {k: kv.get(k, "") for k in swept}
    return swept, values


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def gather(sweep_dir: Path | str, *, use_slurm: bool = True, all_runs: bool = True) -> dict[str, Any]:
    """The rows of the status table and the counts: {'rows': [...], 'counts': Counter, 'swept': [...],
    'slurm': 'sacct' | 'squeue' | None, 'name': str}."""
    sweep_dir = Path(sweep_dir)
    record = read_sweep_record(sweep_dir)
    swept, values = _swept_values(record)
    ids = run_ids(sweep_dir, record, all_runs=all_runs)
    tasks = pack_tasks(record)
    now = time.time()
    rows = []
    for rid in ids:
        d = sweep_dir / rid
        s = _read_json(d / "summary.json")
        row: dict[str, Any] = {"claim": _read_json(d / ".claim.json"), "run_id": rid, "values": values.get(rid, {k: "" for k in swept}),
                               "disk": None if s is None else s.get("status"), "step": None, "total": None,
                               "loss": None, "note": "", "task": tasks.get(rid), "age": None,
                               "started": (d / "config.yaml").exists()}
        if s is not None:
            row.update(step=s.get("step"), total=s.get("total_steps"), loss=s.get("final_train_loss"),
                       raw_job=s.get("slurm_job_id"))
            try:
                row["age"] = now - (d / "summary.json").stat().st_mtime
            except OSError:
                pass
            if row["disk"] == "failed":
                row["note"] = _error_tail(d / "error.txt") or str(s.get("error") or "")

            elif row["disk"] == "diverged":
                dl = s.get("diverged_loss")
                row["note"] = f"diverged at step {s.get('diverged_step')}" + \
                    (f" (loss {dl:.3g})" if isinstance(dl, (int, float)) else "")
        rows.append(row)

    states, source = {}, None
    if use_slurm:
        wanted = [r["task"] for r in rows if r["disk"] not in ("done", "diverged", "failed") and r["task"]]
        wanted += [str(r["raw_job"]) for r in rows if r["disk"] == "running" and r.get("raw_job")]
        states, source = slurm_states(wanted)
        asked: bool | None = bool(wanted)
    else:
        asked = None

    for r in rows:
        r["status"] = _decide(r, states, source)
    counts = Counter(r["status"] for r in rows)
    return {"rows": rows, "counts": counts, "swept": swept, "slurm": source, "asked": asked,
            "name": record.get("name") or sweep_dir.name, "dir": str(sweep_dir)}


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
    r["note"] = (f"its process (pid {claim.get('pid')}) is gone without a final status; "
                 "run the same command again to resume from the checkpoint")
    return True


def _decide(r: dict, states: dict[str, str], source: str | None) -> str:
    disk = r["disk"]
    if disk in ("done", "diverged", "failed"):
        return disk
    state = None
    job = None
    for j in (r["task"], r.get("raw_job")):
        if j and str(j) in states:
            state, job = states[str(j)], str(j)
            break
    known = source is not None and (r["task"] or r.get("raw_job"))
    if disk == "running":
        if state in SLURM_RUNNING:
            return "running"
        if state in SLURM_WAITING:
            r["note"] = f"job {job} {state.lower()}; resumes from its checkpoint"
            return "requeued"
        if known and state is None and source == "squeue":
            r["note"] = "its job is no longer queued or running, and the run wrote no final status"
            return "lost"
        if state is not None:
            why = {"NODE_FAIL": "node died", "TIMEOUT": "time limit", "OUT_OF_MEMORY": "out of memory",
                   "PREEMPTED": "preempted", "BOOT_FAIL": "node failed to boot"}.get(state)
            r["note"] = f"job {job} ended {state}{f' ({why})' if why else ''}; no final status written"
            return "lost"
        if _process_gone(r):
            return "lost"
        if r["age"] is not None:
            r["note"] = f"last checkpoint {_age(r['age'])} ago"
        return "running"
    if disk not in (None, "pending"):
        r["note"] = f"summary.json says {disk!r}"
    # no summary yet
    if state in SLURM_WAITING:
        return "queued"
    if state in SLURM_RUNNING:
        return "running"
    if state is not None or (known and source == "squeue"):
        r["note"] = f"its job {job or r['task']} ended{' ' + state if state else ''} before the run wrote anything"
        return "lost"
    if r["started"]:
        if _process_gone(r):
            return "lost"
        r["note"] = r["note"] or "started, no checkpoint yet"
        return "running"
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
        info["slurm"] or "", {True: "SLURM unavailable (no sacct/squeue answer)", False: "no SLURM job to ask about",
                             None: "SLURM not asked"}[info.get("asked")])
    title = f"[bold]{info['name']}[/]: {total} runs - " + " · ".join(parts or ["none"])
    t = Table(title=title, caption=f"{info['dir']} ({slurm})", box=box.SIMPLE_HEAD, title_justify="left",
              caption_justify="left")
    t.add_column("run_id", style="dim", no_wrap=True)
    for k in info["swept"]:
        t.add_column(k, no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("step", justify="right", no_wrap=True)
    t.add_column("train loss", justify="right", no_wrap=True)
    t.add_column("note", overflow="fold", max_width=80)
    rows = [r for r in info["rows"] if not only or r["status"] in only]
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:      # a huge sweep: the runs that need a look first
        keep = [r for r in rows if r["status"] != "done"]
        hidden = len(rows) - len(keep)
        rows = keep
        if len(rows) > max_rows:
            hidden += len(rows) - max_rows
            rows = rows[:max_rows]
        t.caption += f" - {hidden} rows not shown (done ones first; --all shows every run)"
    for r in rows:
        step = "-" if r["step"] is None else f"{r['step']}/{r['total'] if r['total'] is not None else '?'}"
        t.add_row(r["run_id"], *[r["values"].get(k, "") for k in info["swept"]],
                  Text(r["status"], style=STYLE.get(r["status"], "")), step, _fmt(r["loss"]),
                  Text(r["note"], style="red" if r["status"] in ("failed", "lost") else "dim"))
    return t


def main(argv: Sequence[str] | None = None) -> None:
    from rich.console import Console

    from sweep.errors import fail

    p = argparse.ArgumentParser(prog="sweep status", description="A sweep's runs by status (from the results on "
                                "disk; SLURM is asked only to tell queued, running and lost runs apart).")
    p.add_argument("sweep", help="the sweep folder (out_dir/<name>)")
    p.add_argument("--watch", nargs="?", type=float, const=10.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 10) until every run has ended or Ctrl-C")
    p.add_argument("--only", metavar="STATUS[,STATUS]", help="rows with these statuses only, e.g. failed,lost")
    p.add_argument("--no-slurm", action="store_true", help="do not ask SLURM")
    p.add_argument("--all", action="store_true", help=f"every run's row, even beyond {MAX_ROWS} runs")
    a = p.parse_args(list(argv) if argv is not None else None)
    sweep_dir = Path(a.sweep)
    if not sweep_dir.is_dir():
        fail(f"no sweep folder {sweep_dir}")
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
                console.print("every run has ended")
                return
            console.print(f"[dim]refreshing every {interval:g} s (Ctrl-C to stop)[/]")
            time.sleep(interval)
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    main()
