"""The results store: atomic writes leave the old or the new file, never a torn one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from sweep.results import RunDir, atomic_write, read_json, write_json


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "summary.json"
    write_json(target, {"status": "running", "step": 1})

    def boom(f):
        f.write(b'{"status": "do')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert read_json(target) == {"status": "running", "step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_process_killed_while_writing_in_a_loop_never_leaves_a_torn_file(tmp_path):
    target = tmp_path / "summary.json"
    script = textwrap.dedent(f"""
        from sweep.results import write_json
        i = 0
        while True:
            write_json({str(target)!r}, {{"step": i, "pad": "x" * 200000}})
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(200):
            if target.exists():
                break
            __import__("time").sleep(0.02)
        __import__("time").sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    data = json.loads(target.read_text())  # parses: complete
    assert data["step"] >= 0 and len(data["pad"]) == 200000


def test_run_dir_status(tmp_path):
    d = RunDir(tmp_path / "abc")
    assert d.status() is None and not d.is_finished()
    write_json(d.summary, {"status": "diverged"})
    assert d.is_finished()
    write_json(d.summary, {"status": "failed"})
    assert not d.is_finished()


def test_storage_problems_are_one_line_that_names_the_path_and_the_fix():
    import errno

    from sweep.results import storage_problem

    full = storage_problem(OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoint.pt"))
    assert full.startswith("no space left on the device holding /runs/x/checkpoint.pt") and "rerun" in full
    ro = storage_problem(OSError(errno.EROFS, "Read-only file system", "/ro/runs"))
    assert ro == "cannot write /ro/runs: Read-only file system; choose a writable out_dir=..."
    assert storage_problem(OSError(errno.ECONNRESET, "reset")) is None and storage_problem(ValueError("x")) is None
