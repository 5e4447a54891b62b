"""What SLURM says of jobs: every squeue, sacct and scontrol query of the package, and the parsing of its output.

Array task ids are `<array>_<index>` everywhere; a range line (`12_[0-5%2]`, as squeue and sacct print pending
tasks) is expanded to its tasks (`expand_job_id`), so every caller sees the same ids whichever tool answered.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

SLURM_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD", "STOPPED"}
# Held: the task stays pending until someone runs `scontrol release` (squeue/sacct reason JobHeldUser,
# JobHeldAdmin, launch_failed_requeued_held; state REQUEUE_HOLD or SPECIAL_EXIT).
SLURM_HELD = {"REQUEUE_HOLD", "SPECIAL_EXIT"}
# Not a SLURM state: sacct knew the task only from a stale range record (or not at all) and squeue no longer
# lists it, so it has ended - how, accounting does not say yet.
GONE = "GONE"
DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's own default MaxArraySize
POLL_S = 2.0


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


def _slurm_env() -> dict:
    return dict(os.environ, SLURM_BITSTR_LEN="0")  # full task ranges of pending arrays, never "..."


def squeue_states(timeout: float = 30, env: dict | None = None) -> dict[str, JobState] | None:
    """{task id: JobState} for every job of this user still queued or running (array ranges expanded to their
    tasks); None when squeue is missing or fails."""
    if not shutil.which("squeue"):
        return None
    p = _run(["squeue", "-h", "-r", "--me", "-o", SQUEUE_FORMAT], timeout, env or _slurm_env())
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
    env = _slurm_env()
    if shutil.which("sacct"):
        cmd = ["sacct", "-j", ",".join(ids), SACCT_FORMAT, "-X", "-n", "-P"]
        p = _run(cmd, timeout, env)
        if p is not None and p.returncode != 0 and "field" in (p.stderr or "").lower():
            p = _run([*cmd[:3], "--format=JobID,JobIDRaw,State", *cmd[4:]], timeout, env)  # an old sacct
        if p is not None and p.returncode == 0:
            states = parse_sacct_states(p.stdout)
            if any(not (states.get(j) and states[j].exact) for j in wanted):
                live = squeue_states(timeout, env)
                if live is not None:
                    states = cross_check(states, live, wanted)
            return states, "sacct"
    live = squeue_states(timeout, env)
    if live is not None:
        # squeue lists only live jobs: every other asked id has ended (state unknown)
        return {k: v for k, v in live.items() if k.split("_")[0] in ids}, "squeue"
    return {}, None


def active_tasks(timeout: float = 60) -> dict[str, str]:
    """Task id (`123_4` for array tasks) -> state, for every job of this user still in the queue; {} when
    squeue cannot be asked."""
    return {task: js.state for task, js in (squeue_states(timeout) or {}).items()}


def wait_for_jobs(job_ids: Sequence[str], timeout_s: float | None = None, poll_s: float = POLL_S) -> bool:
    """Block until none of `job_ids` (array ids or task ids) is queued or running; False on timeout."""
    ids = {str(j).split("_")[0] for j in job_ids}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        if not any(t.split("_")[0] in ids for t in active_tasks()):
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(poll_s)


@lru_cache(maxsize=1)
def max_array_size() -> int:
    """The cluster's MaxArraySize (an array may hold that many tasks, indices 0..N-1); 1001 if unreadable."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, flags=re.M)
        if m and int(m.group(1)) > 0:
            return int(m.group(1))
    except (OSError, subprocess.SubprocessError):
        pass
    return DEFAULT_MAX_ARRAY_SIZE
