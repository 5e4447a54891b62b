"""`hydra/launcher=sweep` keeps Hydra's contract: any sweeper drives it, each job returns a float (the run's
objective; `objective_if_failed` for a diverged run, never an exception), and one multirun is one sweep folder
across all its batches, with sweep.json listing every run and Hydra's own record in the folder's .hydra/."""

from __future__ import annotations

import json
import math
import os
import time

import yaml
from conftest import REPO, sweep_cli

from sweep import store

TINY = ["epochs=2", "batch_size=8", "model.hidden=[8]", "data=spirals", "data.n_samples=64", "wandb.mode=disabled"]
PLUGINS = {"PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "plugins"), os.environ.get("PYTHONPATH", "")])}


def _the_sweep(out):
    """The one sweep folder under `out` (fails when there are several) and its sweep.json."""
    (sweep_dir,) = list(out.iterdir())
    return sweep_dir, json.loads((sweep_dir / "sweep.json").read_text())


def _lr(overrides: list[str]) -> str:
    (lr,) = [o for o in overrides if o.startswith("lr=")]
    return lr


def test_a_sweeper_launching_batches_gets_floats_and_one_sweep_folder(tmp_path):
    out, returned = tmp_path / "runs", tmp_path / "returned.json"
    args = ["run", "-m", "hydra/sweeper=two_batches", f"hydra.sweeper.out={returned}", *TINY]
    args += ["lr=0.01,0.02,1000", "objective_if_failed=123.5", f"out_dir={out}"]
    proc = sweep_cli(*args, cwd=tmp_path, env=PLUGINS)
    assert proc.returncode == 0, proc.stderr

    sweep_dir, record = _the_sweep(out)
    runs = {_lr(r["overrides"]): r["run_id"] for r in record["runs"]}
    assert list(runs) == ["lr=0.01", "lr=0.02", "lr=1000"] and record["swept"] == ["lr"]
    stored = store.scan(sweep_dir)
    assert set(stored) == set(runs.values()) and all(r.summary is not None for r in stored.values())
    hydra_record = yaml.safe_load((sweep_dir / ".hydra" / "multirun.yaml").read_text())
    assert hydra_record["hydra"]["sweep"]["dir"] == str(sweep_dir / ".hydra")  # the sweeper's later files go there

    jobs = {_lr(j["overrides"]): j for j in json.loads(returned.read_text())}
    assert list(jobs) == list(runs) and {j["type"] for j in jobs.values()} == {"float"}
    summary = {lr: store.summary(sweep_dir, rid) for lr, rid in runs.items()}
    assert summary["lr=1000"]["status"] == "diverged" and jobs["lr=1000"]["value"] == 123.5
    for lr in ("lr=0.01", "lr=0.02"):
        assert summary[lr]["status"] == "done"
        assert math.isfinite(jobs[lr]["value"]) and jobs[lr]["value"] == summary[lr]["final_val_loss"]

    # the same study again: the same folder, its finished runs skipped and their objectives read back
    again = sweep_cli(*args, cwd=tmp_path, env=PLUGINS)
    assert again.returncode == 0, again.stderr
    assert _the_sweep(out) == (sweep_dir, record)
    assert {_lr(j["overrides"]): j for j in json.loads(returned.read_text())} == jobs


def test_hydras_basic_sweeper_in_batches_fills_one_sweep_folder(tmp_path):
    out = tmp_path / "runs"
    proc = sweep_cli("run", "-m", "lr=0.01,0.02,0.03", "hydra.sweeper.max_batch_size=2", *TINY, f"out_dir={out}")
    assert proc.returncode == 0, proc.stderr
    sweep_dir, record = _the_sweep(out)
    assert [_lr(r["overrides"]) for r in record["runs"]] == ["lr=0.01", "lr=0.02", "lr=0.03"]
    assert (sweep_dir / ".hydra" / "multirun.yaml").is_file()


def test_a_failed_run_returns_nan_and_later_batches_still_run(tmp_path):
    """A run that fails (here: a corrupt checkpoint to resume from) is no result (NaN) for a sweeper, not the
    end of its study; sweep's own grid sweeper trains the later batches too, then exits 1."""
    out, returned = tmp_path / "runs", tmp_path / "returned.json"
    fixed = [*TINY, "name=g", f"out_dir={out}"]
    sweep_cli("run", "-m", "lr=0.1", *fixed, check=True)
    ((rid, rec),) = store.scan(out / "g").items()
    pack, done = rec.pack, rec.summary
    assert done["checkpoint_step"] is not None  # its pack's checkpoint.pt holds it

    def corrupt() -> None:
        """The run as if killed while training: its summary names the pack's checkpoint, which is garbage."""
        (pack / "checkpoint.pt").write_bytes(b"garbage")
        summaries = json.loads((pack / "summary.json").read_text())
        summaries[rid] = dict(done, status="running", written_at=time.time_ns())
        (pack / "summary.json").write_text(json.dumps(summaries))

    corrupt()
    study = ["hydra/sweeper=two_batches", f"hydra.sweeper.out={returned}", "lr=0.1,0.3", *fixed]
    proc = sweep_cli("run", "-m", *study, cwd=tmp_path, env=PLUGINS)
    assert proc.returncode == 0 and "1 of 1 runs failed" in proc.stderr, proc.stderr
    jobs = {_lr(j["overrides"]): j for j in json.loads(returned.read_text())}
    assert jobs["lr=0.1"]["type"] == "float" and math.isnan(jobs["lr=0.1"]["value"])
    assert jobs["lr=0.3"]["type"] == "float" and math.isfinite(jobs["lr=0.3"]["value"])

    corrupt()
    grid = sweep_cli("run", "-m", "lr=0.1,0.4", "hydra.sweeper.max_batch_size=1", *fixed, cwd=tmp_path)
    assert grid.returncode == 1 and "1 of 1 runs failed" in grid.stderr, grid.stderr
    record = json.loads((out / "g" / "sweep.json").read_text())
    assert [_lr(r["overrides"]) for r in record["runs"]] == ["lr=0.1", "lr=0.3", "lr=0.4"]  # every command's runs
    (later,) = [r["run_id"] for r in record["runs"] if _lr(r["overrides"]) == "lr=0.4"]
    assert store.summary(out / "g", later)["status"] == "done"
