"""`make gpu-check` in its CPU mode: the one-call GPU verification script runs end to end here (as CI runs it),
so it cannot rot between the sessions that get a GPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_gpu_check_runs_in_cpu_mode_and_writes_its_json_and_table(tmp_path):
    p = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res["mode"] == "cpu" and "passed" in res["tests"]["summary"]
    assert [r["k"] for r in res["pack"]] == [1, 16, 64] and all(r["model_steps_per_s"] > 0 for r in res["pack"])
    assert res["single"]["sweep_samples_per_s"] > 0 and res["grid"]["ratio"] > 0 and res["auto"]["small_k"] == 64
    assert [r["optimizer"] for r in res["optimizers"]] == ["momentum", "adam", "rmsprop", "adagrad"]
    assert all(r["step_ms"] > 0 and r["error"] is None for r in res["optimizers"])
    assert res["compile"]["plain"]["step_ms"] > 0 and res["compile"]["compile"]["step_ms"] > 0
    assert res["compile"]["fastest"] in ("plain", "compile")
    text = (tmp_path / "gpu_check.txt").read_text()
    assert "model-steps/s" in text and "five ways" in text
