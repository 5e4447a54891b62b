"""A search on the REAL one-node SLURM cluster: worker tasks share one study (Optuna's journal file in the sweep
folder), finish exactly `search.trials` trials, and a killed search resubmitted loses and duplicates nothing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, slurm_problem, sweep_cli

_problem = slurm_problem()
if _problem:
    pytest.skip(
        f"!!! SLURM not available: start it with slurm/dev-cluster-up ({_problem}) !!!", allow_module_level=True
    )

from optuna.trial import TrialState  # noqa: E402

from sweep import store  # noqa: E402
from sweep.launch.queue import wait_for_jobs  # noqa: E402
from sweep.study import STUDY_FILE, open_study  # noqa: E402

pytestmark = pytest.mark.slurm

SEARCH = [
    "cluster=dev",
    "search=random",
    "search.batch=2",
    "search.workers=2",
    "lr=tag(log, interval(1e-3, 0.3))",
    "optimizer=sgd,adam",
    "model.hidden=[16]",
    "data=spirals",
    "data.n_samples=300",
    "wandb.mode=disabled",
]


def _search(out: Path, *args: str) -> subprocess.CompletedProcess:
    proc = sweep_cli("run", "-m", *SEARCH, *args, f"out_dir={out}", "name=s", cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _study(out: Path):
    search = {"name": "random", "seed": 0, "pruner": "none", "direction": "minimize"}
    return open_study(out / "s" / STUDY_FILE, search, 1, create=False)


def _runs(out: Path) -> dict[str, dict]:
    """Run id -> the newest summary the sweep's store holds (a corrupt one fails the test)."""
    records = store.scan(out / "s")
    assert not [r.problem for r in records.values() if r.problem], {k: r.problem for k, r in records.items()}
    return {rid: r.summary for rid, r in records.items() if r.summary is not None}


def test_two_workers_share_one_study_and_finish_exactly_n_trials(tmp_path):
    _search(tmp_path, "search.trials=6", "epochs=2", "cluster.wait=true")
    trials = _study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert {t.user_attrs["worker"].split("_")[1] for t in trials} == {"0", "1"}  # both workers asked trials
    runs = _runs(tmp_path)
    assert len(runs) == 6 and all(s["status"] in ("done", "diverged", "collapsed") for s in runs.values())
    assert sorted(t.value for t in trials if t.value != float("inf")) == sorted(
        s["final_val_loss"] for s in runs.values() if s["status"] == "done"
    )


def test_a_killed_search_resubmitted_loses_and_duplicates_nothing(tmp_path):
    """Both workers are cancelled while trials train; the same command again fails their trials, asks them again
    with the same parameters (their runs resume), and completes exactly 8 trials, each a distinct run."""
    proc = _search(tmp_path, "search.trials=8", "epochs=2000", "checkpoint_every=100")
    array = proc.stdout.split("queued as array ")[1].split()[0]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        trials = _study(tmp_path).trials
        running = [t for t in trials if t.state == TrialState.RUNNING]
        training = [r for r in store.scan(tmp_path / "s").values() if r.status == "running"]
        if len(running) >= 2 and training:
            break
        time.sleep(1)
    else:
        pytest.fail("the workers never got to train")
    subprocess.run(["scancel", "--signal=KILL", "--full", array], check=True)
    subprocess.run(["scancel", array], check=True)
    assert wait_for_jobs([array], timeout_s=60)
    left_running = [t for t in _study(tmp_path).trials if t.state == TrialState.RUNNING]
    assert left_running, "the workers finished before they were cancelled: nothing to test"
    _search(tmp_path, "search.trials=8", "epochs=2000", "checkpoint_every=100", "cluster.wait=true")
    trials = _study(tmp_path).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 8 and failed, [t.state.name for t in trials]
    for f in failed:  # every killed trial was asked again with its parameters, and completed
        assert sum(t.params == f.params for t in complete) == 1
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == 8
    runs = _runs(tmp_path)
    assert len(runs) == 8
    resumed = [s for s in runs.values() if s["resumed_from_step"] > 0]
    assert resumed, "a killed trial's run resumes from its checkpoint"
