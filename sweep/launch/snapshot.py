"""The code a SLURM task runs: the sweep package copied once per content hash to <sweep_dir>/code/<hash>/.

Contract: `snapshot_code(sweep_dir)` returns the folder to put first on the tasks' PYTHONPATH (it holds `sweep/`,
with `sweep/conf/` even where an editable install maps sweep.conf to the checkout's top-level conf/, and a
SOURCE.json naming where it came from and its git state). The same code gives the same folder; two submissions
making it at once leave one complete copy (each builds a temporary folder and renames it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from datetime import datetime
from pathlib import Path

from sweep.provenance import git_state
from sweep.results import SweepDir, write_json


def _package_sources() -> list[tuple[str, Path]]:
    """(name inside the snapshot, folder) of the sweep package and of sweep.conf when it lives elsewhere
    (the editable install maps sweep.conf to the checkout's top-level conf/)."""
    import sweep

    pkg = Path(sweep.__file__).resolve().parent
    out = [("sweep", pkg)]
    spec = importlib.util.find_spec("sweep.conf")
    if spec is not None and spec.submodule_search_locations:
        conf = Path(list(spec.submodule_search_locations)[0]).resolve()
        if conf != pkg / "conf":
            out.append(("sweep/conf", conf))
    return out


def _files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def snapshot_code(sweep_dir: Path) -> Path:
    """Copy the sweep package (as it is now) to <sweep_dir>/code/<content hash>/ once; returns that folder,
    the one to put on the tasks' PYTHONPATH."""
    sources = _package_sources()
    h = hashlib.sha256()
    for name, root in sources:
        for f in _files(root):
            h.update(f"{name}/{f.relative_to(root).as_posix()}\0".encode())
            h.update(f.read_bytes())
            h.update(b"\0")
    dest = SweepDir(Path(sweep_dir).resolve()).code / h.hexdigest()[:12]
    if (dest / "sweep" / "__init__.py").exists():
        return dest
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    for name, root in sources:
        shutil.copytree(root, tmp / name, ignore=ignore, dirs_exist_ok=True)
    write_json(
        tmp / "SOURCE.json",
        {
            "source": str(sources[0][1]),
            "created": datetime.now().isoformat(timespec="seconds"),
            "git": git_state(sources[0][1]),
        },
    )
    try:
        tmp.rename(dest)
    except OSError:  # another submission made the same snapshot meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
