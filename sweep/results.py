"""The local results store: one folder per run, every file written atomically.

    out_dir/<name>/<run_id>/config.yaml     resolved config (no secrets: wandb keys never enter configs)
                            history.parquet  rows every log_every steps (+ test metrics at epoch ends)
                            summary.json     status running|done|diverged|failed, final metrics, timings
                            checkpoint.pt    everything needed to continue bit-identically
                            error.txt        traceback of a failed run

A write goes to a temporary file in the same folder and is renamed over the target, so a process killed at any
instant leaves the previous complete file or the new complete file, never a torn one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

# running: training (or killed while training: resumable from its checkpoint)
# interrupted: stopped on request (Ctrl-C) after a checkpoint; the same command resumes it
# done: trained to the end; diverged: loss non-finite or above diverge_factor x its first loss, stopped there
# collapsed: blew up (loss above collapse_factor x its first) and never recovered: ended no better than it began
# failed: an error; error.txt has the traceback
STATUSES = ("running", "interrupted", "done", "diverged", "collapsed", "failed")
_UMASK = os.umask(0)
os.umask(_UMASK)
FINISHED = ("done", "diverged", "collapsed")  # nothing left to train: a rerun skips them
BLOWN_UP = ("diverged", "collapsed")  # results that are no result: counted and drawn, never averaged


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call write(f) on a temp file beside `path`, fsync it, and rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def write_yaml(path: Path, obj: Any) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C emitter: ~10x faster per run
    write_text(path, yaml.dump(obj, Dumper=dumper, sort_keys=False))


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda f: df.to_parquet(f, index=False))


def save_torch(path: Path, obj: Any) -> None:
    import torch  # here, not at the top: readers of results (status, collect) should not pay for torch

    buf = io.BytesIO()  # serialise in memory: a full disk then raises ENOSPC, not torch's "unexpected pos"
    torch.save(obj, buf)
    atomic_write(path, lambda f: f.write(buf.getbuffer()))


def load_torch(path: Path) -> Any:
    """A checkpoint written by save_torch. weights_only: a planted pickle in a shared project folder must not
    run code when a sweep is resumed; checkpoints hold only tensors, numbers, strings, lists and dicts."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def storage_problem(exc: BaseException) -> str | None:
    """One line for an OSError of the results store (full disk, read-only folder, a file where a folder should
    be), or None for anything else."""
    import errno

    if not isinstance(exc, OSError):
        return None
    where = exc.filename or "the results folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device holding {where}: free space (or set out_dir=...) and rerun to resume"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return f"cannot write {where}: {exc.strerror}; choose a writable out_dir=..."
    return None


def clean_temporaries(folder: Path) -> int:
    """Remove the temporary files atomic_write leaves when a process is killed mid-write; only call this on a
    folder no other process is writing (a run folder whose claim this process holds). Returns how many."""
    n = 0
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when the file does not exist."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def read_record(path: Path) -> dict | None:
    """The JSON object in `path`; None when it is missing, or unreadable (said in one line on stderr): one torn
    file must not stop every other sweep or run from being read."""
    import sys

    try:
        obj = read_json(path)
    except (ValueError, OSError) as e:
        print(
            f"sweep: skipped {path}: unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]})", file=sys.stderr
        )
        return None
    if obj is not None and not isinstance(obj, dict):
        print(f"sweep: skipped {path}: not a JSON object", file=sys.stderr)
        return None
    return obj


class RunDir:
    """The paths of one run's folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.history = self.root / "history.parquet"
        self.summary = self.root / "summary.json"
        self.checkpoint = self.root / "checkpoint.pt"
        self.error = self.root / "error.txt"
        self.claim = self.root / ".claim.lock"
        self.wandb_id = self.root / "wandb_id"  # this run's wandb id: random once, kept across resumes

    def status(self) -> str | None:
        """The summary's status; None before the run wrote one; "corrupt" when summary.json cannot be read as a
        run summary (a torn copy, a stray edit): the run is then trained again from its checkpoint."""
        try:
            s = read_json(self.summary)
        except (ValueError, OSError):
            return "corrupt"
        if s is None:
            return None
        if not isinstance(s, dict) or s.get("status") not in STATUSES:
            return "corrupt"
        return s["status"]

    def is_finished(self) -> bool:
        return self.status() in FINISHED
