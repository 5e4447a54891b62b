"""`sweep sync SWEEP [--jobs N] [--dry-run] [--offline]`: upload a sweep's runs to wandb.

Runs of the pack store are sent from the store itself (sweep/mirror.py: training never talks to wandb); with
--offline they are written as wandb offline runs under <sweep>/wandb/ for a later `wandb sync`.

Sweeps written before the pack store kept wandb's offline files per run: each run trained with wandb offline
and wrote
`<run>/wandb/offline-run-<time>-<wandb id>/run-<wandb id>.wandb`; a run resumed after a requeue has one such
folder per process. `wandb sync` uploads a folder and then writes `run-<run_id>.wandb.synced` beside the .wandb file
(wandb 0.31: wandb/cli/beta_sync.py `_is_synced`), so a folder with that marker is skipped here too.

One `wandb sync DIR [DIR ...]` command per run, its folders in start-time order (they are one wandb run and must
be replayed in order); `--jobs` runs are synced at once. Runs not finished yet (running, interrupted - it
resumes into the same wandb run -, or no summary) are left for later unless `--include-unfinished`: their .wandb
file is still being written.

Set SWEEP_WANDB_CMD to use another wandb command line (e.g. `python -m wandb`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sweep.results import ENDED, RunDir, check_sweep_dir, read_summary, read_sweep_record, run_ids

# A run's .wandb file is complete once the run has ENDED (finished or failed: no process writes to it any more).
# Not interrupted: the same command resumes it, appending to its wandb run.
AUTH_ERRORS = ("No API key", "wandb login", "401", "Unauthorized")


@dataclass
class RunSync:
    """What syncing one run means: its folders still to upload, those already uploaded, and why it waits."""

    run_id: str
    status: str | None
    todo: list[Path] = field(default_factory=list)
    synced: list[Path] = field(default_factory=list)
    skip_reason: str | None = None


def wandb_file(run_dir: Path) -> Path | None:
    """The .wandb transaction log of one offline-run folder (None when there is none)."""
    files = sorted(run_dir.glob("*.wandb"))
    return files[0] if files else None


def is_synced(wandb_log: Path) -> bool:
    """wandb's own test: a `<name>.wandb.synced` marker beside the .wandb file."""
    return wandb_log.with_suffix(".wandb.synced").exists()


def offline_dirs(run_root: Path) -> list[Path]:
    """The offline-run folders of one run, oldest first (their names start with the start time)."""
    wandb_dir = RunDir(run_root).wandb
    if not wandb_dir.is_dir():
        return []
    dirs = [d for d in wandb_dir.glob("offline-run-*") if d.is_dir() and not d.is_symlink()]
    return sorted(dirs, key=lambda d: d.name)


def _status(run_dir: RunDir) -> str | None:
    """The run's status in summary.json; None when there is none or it is corrupt (a list, a number)."""
    summary, _ = read_summary(run_dir.summary)
    return None if summary is None else summary["status"]


def plan(sweep_dir: Path | str, *, include_unfinished: bool = False) -> list[RunSync]:
    """Every run of the sweep (listed in sweep.json or present) with its folders to sync."""
    sweep_dir = Path(sweep_dir)
    out = []
    for rid in run_ids(sweep_dir, read_sweep_record(sweep_dir), all_runs=True):
        run_dir = RunDir(sweep_dir / rid)
        run_sync = RunSync(rid, _status(run_dir))
        for offline_dir in offline_dirs(run_dir.root):
            log = wandb_file(offline_dir)
            if log is None:
                continue
            (run_sync.synced if is_synced(log) else run_sync.todo).append(offline_dir)
        if not run_sync.todo:
            run_sync.skip_reason = "synced" if run_sync.synced else "no offline wandb run"
        elif run_sync.status not in ENDED and not include_unfinished:
            run_sync.skip_reason = f"not finished ({run_sync.status or 'no summary'})"
        out.append(run_sync)
    return out


def wandb_command() -> list[str]:
    env = os.environ.get("SWEEP_WANDB_CMD")
    if env:
        return shlex.split(env)
    beside = Path(sys.executable).with_name("wandb")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("wandb")
    return [found] if found else [sys.executable, "-m", "wandb"]


def build_command(
    run_sync: RunSync, *, project: str | None = None, entity: str | None = None, base: Sequence[str] | None = None
) -> list[str]:
    """`wandb sync [--project P] [--entity E] DIR...` for one run's unsynced folders."""
    cmd = [*(base or wandb_command()), "sync"]
    if project:
        cmd += ["--project", project]
    if entity:
        cmd += ["--entity", entity]
    return cmd + [str(d) for d in run_sync.todo]


def _run(cmd: list[str], timeout: float | None) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out = proc.stderr.strip() or proc.stdout.strip()
        return proc.returncode, out, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:g} s", time.perf_counter() - t0
    except OSError as e:
        return 127, f"cannot run {cmd[0]}: {e}", time.perf_counter() - t0


def sync(
    runs: list[RunSync],
    *,
    jobs: int = 4,
    project: str | None = None,
    entity: str | None = None,
    timeout: float | None = None,
    echo=print,
) -> dict[str, list[str]]:
    """Run the commands of `runs` that are due, `jobs` at a time; the run ids by outcome: synced, failed, and
    not_attempted (an authentication failure stops the runs not started yet)."""
    due = [r for r in runs if r.skip_reason is None]
    base = wandb_command()
    result: dict[str, list[str]] = {"synced": [], "failed": [], "not_attempted": []}
    if not due:
        return result
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [
            (r, pool.submit(_run, build_command(r, project=project, entity=entity, base=base), timeout)) for r in due
        ]
        for run_sync, future in futures:
            if future.cancelled():
                result["not_attempted"].append(run_sync.run_id)
                continue
            rc, out, dt = future.result()
            n = len(run_sync.todo)
            unmarked = [d for d in run_sync.todo if (w := wandb_file(d)) is None or not is_synced(w)]
            if rc == 0 and unmarked:  # wandb sync logs an ERROR and exits 0 against a server that answers garbage
                rc = 1
                out = f"{out}\nwandb sync exited 0 but did not mark {unmarked[0]} synced (its .synced file is missing)"
            if rc == 0:
                result["synced"].append(run_sync.run_id)
                echo(f"sweep: synced {run_sync.run_id} ({n} folder{'s' * (n != 1)}, {dt:.1f} s)")
                continue
            result["failed"].append(run_sync.run_id)
            last = out.splitlines()[-1] if out else ""
            echo(f"sweep: sync of {run_sync.run_id} failed (exit {rc}): {last}")
            if any(m in out for m in AUTH_ERRORS):  # every other run would fail the same way
                for _, other in futures:
                    other.cancel()
    return result


def main(argv: Sequence[str] | None = None) -> None:
    from sweep.errors import fail

    p = argparse.ArgumentParser(
        prog="sweep sync",
        description="Upload a sweep's offline wandb runs (wandb sync), skipping those already synced.",
    )
    p.add_argument("sweep", help="the sweep folder (out_dir/<name>)")
    p.add_argument("--jobs", "-j", type=int, default=4, help="runs synced at once (default 4)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also sync runs still running (or lost): what their .wandb file holds so far",
    )
    p.add_argument(
        "--offline", action="store_true", help="write wandb offline runs under SWEEP/wandb (for `wandb sync`) instead"
    )
    p.add_argument("--project", help="upload to this wandb project instead of the one the runs were made with")
    p.add_argument("--entity", help="upload to this wandb entity")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run's sync (default 600)")
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the wandb server to answer before giving up (default 10)",
    )
    a = p.parse_args(list(argv) if argv is not None else None)
    sweep_dir = check_sweep_dir(a.sweep, "sweep sync")
    if a.jobs < 1:
        fail(f"--jobs {a.jobs}: use at least 1")
    from sweep.mirror import Mirror, mirror_once
    from sweep.store import scan

    mode = "offline" if a.offline else "online"
    store_due = Mirror(sweep_dir, mode).due(scan(sweep_dir), a.include_unfinished)
    runs = plan(sweep_dir, include_unfinished=a.include_unfinished)
    due = [r for r in runs if r.skip_reason is None]
    skipped: dict[str, int] = {}
    for r in runs:
        if r.skip_reason is not None:
            key = r.skip_reason.split(" (")[0]
            skipped[key] = skipped.get(key, 0) + 1
    skip_text = ", ".join(f"{n} {k}" for k, n in skipped.items()) or "none"
    n_dirs = sum(len(r.todo) for r in due)
    if a.dry_run:
        base = wandb_command()
        for r in due:
            print(shlex.join(build_command(r, project=a.project, entity=a.entity, base=base)))
        waiting = [r for r in runs if r.skip_reason and r.skip_reason.startswith("not finished")]
        for r in waiting:
            print(f"# {r.run_id}: {r.skip_reason}; --include-unfinished to sync it anyway")
        for rec in store_due:
            print(f"# {rec.run_id}: {rec.status}, sent from the store")
        print(
            f"sweep: would sync {len(due) + len(store_due)} run(s) ({len(store_due)} from the store, {n_dirs} "
            f"offline folder(s)); skipped: {skip_text} (dry run: nothing uploaded)"
        )
        return
    if a.offline:
        res = mirror_once(sweep_dir, "offline", include_unfinished=a.include_unfinished)
        print(f"sweep: {len(res['sent'])} wandb offline run(s) written under {sweep_dir}/wandb; `wandb sync` uploads")
        sys.exit(1 if res["failed"] else 0)
    if not due and not store_due:
        print(f"sweep: nothing to sync in {sweep_dir} ({len(runs)} offline runs; skipped: {skip_text})")
        return
    # No network (a compute node) or a server that never answers: say so at once instead of letting every
    # `wandb sync` hang for minutes.
    from sweep.tracking import reachable, server_url

    print(f"sweep: checking that {server_url()} answers ...", flush=True)
    if not reachable(a.connect_timeout):
        fail(
            f"the wandb server {server_url()} did not answer within {a.connect_timeout:g} s: run `sweep sync` "
            "on a machine with internet access (or set WANDB_BASE_URL); nothing was uploaded"
        )
    print(f"sweep: syncing {len(due) + len(store_due)} run(s), {a.jobs} at a time; skipped: {skip_text}")
    t0 = time.perf_counter()
    res = sync(runs, jobs=a.jobs, project=a.project, entity=a.entity, timeout=a.timeout)
    if store_due:
        if a.project or a.entity:  # the mirror takes them from each run's config
            os.environ.update({k: v for k, v in (("WANDB_PROJECT", a.project), ("WANDB_ENTITY", a.entity)) if v})
        sent = mirror_once(sweep_dir, "online", include_unfinished=a.include_unfinished, echo=lambda s: None)
        res["synced"] += sent["sent"]
        res["failed"] += list(sent["failed"])
        for rid, why in sent["failed"].items():
            print(f"sweep: sync of {rid} failed: {why}")
    extra = (
        f", {len(res['not_attempted'])} not attempted (fix the login, then run it again)"
        if res["not_attempted"]
        else ""
    )
    print(f"sweep: {len(res['synced'])} synced, {len(res['failed'])} failed{extra} in {time.perf_counter() - t0:.1f} s")
    if res["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
