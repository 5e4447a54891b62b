"""cluster.workers=2 on this machine (sweep/launch/local.py; no SLURM involved): killing
the sweep process must not leave its pool workers, or their wandb-core processes, running as orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# long enough that both workers are still training when the parent is killed; wandb offline starts wandb-core
SLOW = [
    "lr=0.01,0.02,0.03,0.04",
    "pack=1",
    "cluster.workers=2",
    "epochs=300",
    "model.hidden=[128,128]",
    "wandb.mode=offline",
]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a live process, None once it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    return None if state == "Z" else (state, int(ppid))


def _tree(pid: int) -> set[int]:
    """Live descendants of pid."""
    children: dict[int, set[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        s = _stat(int(d.name))
        if s:
            children.setdefault(s[1], set()).add(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), ()):
            out.add(c)
            todo.append(c)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _start_grid(tmp_path: Path) -> tuple[subprocess.Popen, set[int]]:
    """Start the 4-pack grid with 2 workers; return it and its process tree once both workers train."""
    log = open(tmp_path / "sweep.log", "w")  # noqa: SIM115  not a pipe: orphans holding it would block reading it
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", "-m", *SLOW, f"out_dir={tmp_path}", "name=orphans"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true"),
        start_new_session=True,
    )  # a kill of its group at teardown cannot reach pytest
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "orphans").glob("packs/*/.claim.json"))) < 2:  # pack=1: a pack per run
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the grid never had 2 runs training:\n{(tmp_path / 'sweep.log').read_text()}")
        time.sleep(0.2)
    time.sleep(2)  # let each worker's wandb-core start
    tree = _tree(proc.pid)
    workers = [p for p in tree if _stat(p) and _stat(p)[1] == proc.pid and "multiprocessing" in _cmdline(p)]
    assert len(workers) >= 2, {p: _cmdline(p) for p in tree}
    return proc, tree


def _assert_tree_gone(proc: subprocess.Popen, tree: set[int], timeout_s: float = 8) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = {p for p in tree if _stat(p)}
        if not left:
            return
        time.sleep(0.1)
    for p in left:  # don't leave them to the next test
        os.kill(p, signal.SIGKILL)
    pytest.fail(f"still running {timeout_s:g} s after the sweep process died: { {p: _cmdline(p)[:120] for p in left} }")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_parent_of_a_local_pool_leaves_no_orphans(tmp_path, sig):
    proc, tree = _start_grid(tmp_path)
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    _assert_tree_gone(proc, tree)
    if sig == signal.SIGTERM:  # stopped its workers itself, and says it was terminated
        assert proc.returncode == 128 + signal.SIGTERM, (tmp_path / "sweep.log").read_text()
