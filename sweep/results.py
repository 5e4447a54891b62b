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
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

STATUSES = ("running", "done", "diverged", "failed")
_UMASK = os.umask(0)
os.umask(_UMASK)
FINISHED = ("done", "diverged")


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

    atomic_write(path, lambda f: torch.save(obj, f))


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when the file does not exist."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


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

    def status(self) -> str | None:
        s = read_json(self.summary)
        return None if s is None else s.get("status")

    def is_finished(self) -> bool:
        return self.status() in FINISHED
