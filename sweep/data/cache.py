"""On-disk cache of generated numpy arrays (one `.npz` per key).

Contract:
- `cache_root(cache_dir)` is `cache_dir` if given, else `$XDG_CACHE_HOME/sweep` or
  `~/.cache/sweep`.
- `write_npz` is atomic: the arrays go to a temp file in the same directory, which is then
  `os.replace`d onto the final name, so a killed process (or two sweep jobs racing on the same
  key) never leaves a torn file behind, only a complete one or none.
- `read_npz` returns None for a missing or unreadable file instead of raising, so callers can
  simply regenerate.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(os.path.expandvars(cache_dir)).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sweep"


def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """All arrays of `path`, or None if it is missing or not a readable npz file."""
    try:
        # allow_pickle=False: a cache file must never be able to run code.
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write `arrays` to `path` (creating its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache_dir from other users
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
