"""wandb as a mirror of the store: wandb runs made from what training wrote, never inside training.

Training writes only to the store (sweep/store.py). This module turns a sweep's records into wandb runs, one
per run: id = the run's `wandb_id` (random once, carried by every summary of the run: stable across resumes,
unique across sweeps), group = the sweep's name, name = the swept values, config = the resolved config with
run_id and versions (git commit included), and the history rows at their steps, then the summary.

    python -m sweep.mirror SWEEP --mode online --follow --parent PID   # what `wandb.mode=online` starts
    sweep sync SWEEP                                                  # upload ended runs (login node)
    sweep sync SWEEP --offline                                        # write wandb offline files instead

What was sent is kept in `<sweep>/wandb/mirror.json` ({wandb_id: {"step": last step sent, "ended": bool,
"mode": ...}}), so a mirror that stopped (a server down, a killed process) continues where it was, and a run
is never sent twice. A slow, refusing or absent server costs the mirror's process its time, never training's;
what it could not send is said on stderr and stays due for the next `sweep sync`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sweep.errors import described
from sweep.results import ENDED, HISTORY_FILE, pid_alive, read_json, write_json
from sweep.store import RunRecord, file_stamp, read_history_rows, scan

WANDB_DIR = "wandb"  # wandb's own folder in the sweep (wandb.init(dir=sweep)); it holds the mirror's state too
STATE_FILE = "mirror.json"
LOCK_FILE = "mirror.lock"
LOG_FILE = "mirror.log"
FIRST_LOOK_S = 5.0  # a follower's first look at the store, after its training process started


def state_path(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / WANDB_DIR / STATE_FILE


def _mirrored(rec: RunRecord) -> bool:
    """Runs that wandb should show: a summary with a wandb id, and a config that did not turn wandb off."""
    cfg, s = rec.config or {}, rec.summary or {}
    return bool(s.get("wandb_id")) and (cfg.get("wandb") or {}).get("mode") != "disabled"


def wandb_config(rec: RunRecord) -> dict:
    return dict(rec.config or {}, run_id=rec.run_id, versions=(rec.summary or {}).get("versions"))


def _clean(row: dict) -> dict:
    """A history row as the trainer logged it: NaN and None cells left out."""
    return {k: v for k, v in row.items() if v is not None and v == v}


class Mirror:
    """Sends a sweep's records to wandb in one mode (online, or offline files for `wandb sync`)."""

    def __init__(self, sweep_dir: Path | str, mode: str, echo: Callable[[str], None] = print) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.mode = mode
        self.echo = echo
        self.state: dict[str, dict] = read_json(state_path(self.sweep_dir)) or {}
        self.open_runs: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self._histories: dict[Path, tuple[tuple, dict[str, list[dict]]]] = {}  # by pack: read once per change

    def rows(self, rec: RunRecord, after: int | None) -> list[dict]:
        """The run's history rows with a step after `after` (a pack's history file is read once per change,
        not once per run: a pack of 4,096 runs is one read per look)."""
        if rec.pack is None:
            t = read_history_rows(rec)
            rows = [] if t is None else [_clean(r) for r in t.to_pylist()]
        else:
            path = rec.pack / HISTORY_FILE
            stamp = file_stamp(path)
            hit = self._histories.get(rec.pack)
            if hit is None or hit[0] != stamp:
                by_run: dict[str, list[dict]] = {}
                if stamp:
                    import pyarrow.parquet as pq

                    for r in pq.read_table(path).to_pylist():
                        by_run.setdefault(r.pop("run_id"), []).append(_clean(r))
                hit = self._histories[rec.pack] = (stamp, by_run)
            rows = hit[1].get(rec.run_id, [])
        return [r for r in rows if "step" in r and (after is None or r["step"] > after)]

    def _key(self, wandb_id: str) -> str:
        return f"{self.mode}:{wandb_id}"

    def due(self, records: dict[str, RunRecord], include_unfinished: bool) -> list[RunRecord]:
        out = []
        for rec in records.values():
            if not _mirrored(rec):
                continue
            st = self.state.get(self._key(rec.summary["wandb_id"])) or {}
            if st.get("ended"):
                continue
            if rec.status in ENDED or include_unfinished:
                out.append(rec)
        return out

    def _open(self, rec: RunRecord) -> Any:
        import wandb

        from sweep.tracking import LEAN_SETTINGS

        cfg = rec.config or {}
        w = cfg.get("wandb") or {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return wandb.init(
                id=rec.summary["wandb_id"],
                name=w.get("name") or w.get("run_name") or rec.run_id,
                group=w.get("group") or cfg.get("name"),
                job_type=w.get("job_type") or "train",
                notes=w.get("notes"),
                project=w.get("project"),
                entity=w.get("entity"),
                tags=list(w.get("tags") or []),
                config=wandb_config(rec),
                dir=str(self.sweep_dir),
                resume="allow",
                reinit="create_new",
                mode=self.mode,
                settings=wandb.Settings(init_timeout=float(w.get("init_timeout_s") or 90), **LEAN_SETTINGS),
            )

    def send(self, rec: RunRecord, finish: bool) -> bool:
        """Send the run's rows not sent yet (and its summary when it has ended); False when wandb refused."""
        wid = rec.summary["wandb_id"]
        st = self.state.setdefault(self._key(wid), {"run_id": rec.run_id, "step": None, "ended": False})
        try:
            run = self.open_runs.get(wid)
            if run is None:
                run = self.open_runs[wid] = self._open(rec)
            rows = self.rows(rec, st.get("step"))
            for row in rows:
                run.log({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))
            if rows:
                st["step"] = int(rows[-1]["step"])
            ended = rec.status in ENDED
            if ended or finish:
                if ended:
                    skip = ("versions", "traceback", "written_at")
                    run.summary.update({k: v for k, v in rec.summary.items() if k not in skip})
                run.finish(exit_code=1 if rec.status == "failed" else 0)
                self.open_runs.pop(wid, None)
                st["ended"] = ended
        except Exception as e:  # a server down, a quota, a broken wandb: said, and due next time
            self.open_runs.pop(wid, None)
            self.failed[rec.run_id] = described(e)[:200]
            return False
        finally:
            self.save()
        self.failed.pop(rec.run_id, None)
        return True

    def save(self) -> None:
        write_json(state_path(self.sweep_dir), self.state, durable=False)

    def close(self) -> None:
        """Finish every open run, then let wandb's service write out what it holds: a run's finish() may return
        before its offline file is complete, which a reader (or `wandb sync`) right after would find torn."""
        for wid, run in list(self.open_runs.items()):
            try:
                run.finish(exit_code=0)
            except Exception:
                pass
            self.open_runs.pop(wid, None)
        wandb = sys.modules.get("wandb")
        if wandb is not None:
            with contextlib.suppress(Exception):
                wandb.teardown()


def mirror_once(sweep_dir: Path | str, mode: str, *, include_unfinished: bool = False, echo=print) -> dict:
    """Send every due run once and close them; {'sent': [...], 'failed': {run_id: why}}."""
    m = Mirror(sweep_dir, mode, echo)
    sent = []
    try:
        for rec in m.due(scan(sweep_dir), include_unfinished):
            if m.send(rec, finish=True):
                sent.append(rec.run_id)
                echo(f"sweep: {'synced' if mode == 'online' else 'wrote wandb offline run of'} {rec.run_id}")
            else:
                echo(f"sweep: wandb refused {rec.run_id}: {m.failed[rec.run_id]}")
    finally:
        m.close()
    return {"sent": sent, "failed": dict(m.failed)}


def follow(sweep_dir: Path | str, mode: str, parent: int | None, poll_s: float = 5.0) -> dict:
    """Keep wandb's runs up to date with the store while `parent` (the training process) lives, then send
    what is left and close every run. One follower per sweep: a second one returns at once."""
    from filelock import FileLock, Timeout

    sweep_dir = Path(sweep_dir)
    (sweep_dir / WANDB_DIR).mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(sweep_dir / WANDB_DIR / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return {"sent": [], "failed": {}, "already_followed": True}
    m = Mirror(sweep_dir, mode, echo=lambda s: print(s, file=sys.stderr, flush=True))
    sent: set[str] = set()
    failures = 0  # passes in a row that wandb refused: the next look waits twice as long (at most 5 min)
    try:
        while True:
            time.sleep(min(poll_s * 2**failures, 300.0))  # the first wait: a pack's start-up, CPUs are training's
            last = parent is not None and not pid_alive(parent)
            ok = True
            for rec in m.due(scan(sweep_dir), include_unfinished=True):
                if not m.send(rec, finish=last):
                    ok = False
                    if not last:  # the server is down or refusing: the rest waits for the next look
                        break
                elif rec.status in ENDED:
                    sent.add(rec.run_id)
            failures = 0 if ok else failures + 1
            if last:
                break
    finally:
        m.close()
        lock.release()
    for rid, why in m.failed.items():
        print(f"sweep: wandb: could not send {rid} ({why}); `sweep sync {sweep_dir}` sends it later", file=sys.stderr)
    return {"sent": sorted(sent), "failed": dict(m.failed)}


def start_follower(sweep_dir: Path, mode: str = "online") -> None:
    """Start `follow` in a process of its own (not a thread of training), logging to <sweep>/wandb/mirror.log.
    It ends by itself once this process has ended and it has sent what is left."""
    import subprocess

    log_dir = Path(sweep_dir) / WANDB_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    args = [str(sweep_dir), "--mode", mode, "--follow", "--parent", str(os.getpid())]
    # the child lowers its priority and waits before importing anything: a pack's start-up is training's
    code = "import sys, time; time.sleep(float(sys.argv[1])); from sweep.mirror import main; main(sys.argv[2:])"
    # nice from its first instruction: even the interpreter's start-up beside training's threads stalls their
    # parallel regions (benchmarks/bench_store.py measures a pack with and without a follower)
    nice_bin = shutil.which("nice")
    nice = [nice_bin, "-n", "10"] if nice_bin else []
    with open(log_dir / LOG_FILE, "ab") as log:
        subprocess.Popen(
            [*nice, sys.executable, "-c", code, str(FIRST_LOOK_S), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a Ctrl-C of the training process is not the mirror's
        )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sweep.mirror", description=__doc__.splitlines()[0])
    p.add_argument("sweep")
    p.add_argument("--mode", choices=("online", "offline"), default="online")
    p.add_argument("--follow", action="store_true", help="keep following the store while --parent lives")
    p.add_argument("--parent", type=int, default=None, help="the training process's pid")
    p.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the store (default 5)")
    a = p.parse_args(list(argv) if argv is not None else None)
    if a.follow:
        with contextlib.suppress(OSError):
            os.nice(10)  # beside a training process on the same CPUs: training goes first
        res = follow(a.sweep, a.mode, a.parent, a.poll)
    else:
        res = mirror_once(a.sweep, a.mode)
    sys.exit(1 if res["failed"] else 0)


if __name__ == "__main__":
    main()
