"""sweep.pruning: a search's pruner deciding inside packs at rungs; a pruned model leaves its pack as a diverged
one does, and its trial is told by the pack (so a killed search never asks it again)."""

from __future__ import annotations

import os

import numpy as np
import optuna
import pandas as pd
import pytest
import store_helpers
from conftest import make_cfg
from test_search import SMALL, SPACE, _search, _study, _summaries

from sweep import store
from sweep.config import run_id
from sweep.runner import train_runs
from sweep.search import parse_space
from sweep.study import PRUNED_AT, STUDY_FILE, open_study


@pytest.mark.parametrize("rungs", [1, 2])
def test_pruned_models_leave_their_pack_and_the_others_train_as_if_alone(tmp_path, rungs):
    """ASHA prunes at epoch ends inside packs of 8: a pruned trial stops (status pruned, its checkpoint gone) at
    a rung, and every trial's history matches the same config trained alone without a search (1e-10, float64)
    up to where it stopped."""
    _search(
        tmp_path,
        "search=random",
        "search.trials=8",
        "search.batch=8",
        "search.pruner=asha",
        "epochs=4",
        "dtype=float64",
        "log_every=3",
        f"search.rungs_per_epoch={rungs}",
    )
    folder, study = _study(tmp_path, "asha", 4)
    states = [t.state.name for t in study.trials]
    assert "PRUNED" in states and "COMPLETE" in states, states
    assert len(_summaries(folder)) == 8
    for t in study.trials:
        overrides = [f"lr={t.params['lr']!r}", f"optimizer={t.params['optimizer']}"]
        cfg = make_cfg(tmp_path / "alone", *overrides, *SMALL, "epochs=4", "dtype=float64", "log_every=3")
        train_runs([cfg], progress=False)
        alone = store_helpers.history(cfg)
        rid = run_id(cfg)  # the same config: a search's keys are not part of a run's identity
        s = store.summary(folder, rid)
        packed = store.history(folder, rid)
        assert s["pack_size"] > 1
        # the pruner heard each rung's validation loss (never a test loss), as the run's history records it
        evals = packed.dropna(subset=["val_loss"])
        at_rungs = {int(round(e * rungs)): v for e, v in zip(evals["epoch"], evals["val_loss"])}
        assert t.intermediate_values and all(at_rungs[r] == v for r, v in t.intermediate_values.items())
        if t.state.name == "PRUNED":
            assert s["status"] == "pruned" and s["pruned_epoch"] == t.user_attrs["pruned_at_epoch"] < 4
            assert s["epochs_trained"] == s["pruned_epoch"]
            # nothing to resume: no checkpoint holds it
            assert s["checkpoint_step"] is None and store.checkpoint(folder, rid) is None
            alone = alone[alone["step"] <= packed["step"].max()]
        else:
            assert s["status"] == "done" and s["final_val_loss"] == pytest.approx(t.value, rel=1e-12)
            assert s["epochs_trained"] == 4
        packed, alone = _train_rows(packed), _train_rows(alone)
        np.testing.assert_allclose(packed, alone, rtol=1e-10)


def _train_rows(history: pd.DataFrame) -> np.ndarray:
    """The train losses of the train rows (a run pruned before its first has none; evaluation rows carry none)."""
    return history["train_loss"].dropna().to_numpy() if "train_loss" in history else np.array([])


@pytest.mark.parametrize("order", ["best first", "best last"])
def test_a_packs_trials_are_judged_together_whatever_their_place(tmp_path, order):
    """Trials of a pack reach a rung together and are judged best first: the decisions depend on the values, not
    on the models' places in the pack (judged in pack order, the first had no competitor and always went on)."""
    from sweep.pruning import TrialPruning
    from sweep.study import open_study

    search = {"name": "random", "seed": 0, "pruner": "asha", "direction": "minimize", "rungs_per_epoch": 1}
    journal = tmp_path / STUDY_FILE
    study = open_study(journal, search, 4, create=True)
    trials = [study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0)}) for _ in range(6)]
    cfgs = [{"epochs": 4, "search": dict(search, trial=t.number, study=str(journal))} for t in trials]
    losses = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    if order == "best last":
        losses = losses[::-1].copy()
    stop = TrialPruning(cfgs).prune(1, losses, 1.0)
    assert {float(loss): s for loss, s in zip(losses, stop)} == {
        0.1: False,
        0.2: True,
        0.3: True,
        0.4: True,
        0.5: True,
        0.6: True,
    }
    pruned = [t for t in study.get_trials(deepcopy=False) if "pruned_at_epoch" in t.user_attrs]
    assert len(pruned) == 5


def test_a_trial_that_diverges_at_a_rung_is_told_diverged_not_pruned(tmp_path):
    """Divergence and pruning are found at the same sync when the first sync is an epoch end: a model that
    diverged leaves as diverged (its trial told objective_if_failed), and the pruner never hears of it."""
    _search(
        tmp_path,
        "search=random",
        "search.trials=16",
        "search.batch=16",
        "search.pruner=asha",
        "search.seed=3",
        "epochs=3",
        "log_every=100",
        "diverge_factor=1.5",
    )
    folder, study = _study(tmp_path, "asha", 3)
    statuses = []
    for t in study.trials:
        overrides = [f"lr={t.params['lr']!r}", f"optimizer={t.params['optimizer']}", "epochs=3", "diverge_factor=1.5"]
        cfg = make_cfg(tmp_path, *overrides, *SMALL)
        s = store.summary(folder, run_id(cfg))
        statuses.append(s["status"])
        assert (t.state.name == "PRUNED") == (s["status"] == "pruned"), (t.state.name, s["status"])
        if s["status"] == "diverged":
            assert t.value == float("inf") and PRUNED_AT not in t.user_attrs
    assert "diverged" in statuses and "pruned" in statuses, statuses


def test_a_pruned_trial_is_told_by_its_pack_so_a_killed_search_does_not_ask_it_again(tmp_path):
    """A pruned trial stayed RUNNING until its batch returned: a search killed in that window asked it again,
    failed it on its finished run and trained extra trials (25 trials and 17 runs for 12, measured). Now the
    pack tells the study once the pruned run's summary has landed; what a rerun finds RUNNING is only what
    was really unfinished."""
    from sweep.search import ask, retry_stale, trial_overrides

    search = {"name": "random", "seed": 0, "pruner": "asha", "direction": "minimize", "rungs_per_epoch": 1}
    journal = tmp_path / "s" / STUDY_FILE
    journal.parent.mkdir()
    study = open_study(journal, search, 3, create=True)
    space = parse_space(SPACE)
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    trials = ask(study, space, 8, f"local:{socket.gethostname()}:{gone.pid}")  # asked by a process now gone
    cfgs = [
        make_cfg(tmp_path, *trial_overrides(space, t, "s", journal), *SMALL, "epochs=3", "search=random",
                 "search.pruner=asha")
        for t in trials
    ]  # fmt: skip
    train_runs(cfgs, pack=8, progress=False)  # the batch trained; the asker is killed before it tells
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    pruned = [n for n, s in states.items() if s == "PRUNED"]
    assert pruned and set(states.values()) == {"PRUNED", "RUNNING"}, states
    for n in pruned:
        assert store.summary(tmp_path / "s", run_id(cfgs[n]))["status"] == "pruned"
    retry_stale(study, f"local:{socket.gethostname()}:{os.getpid()}")  # the rerun: fails, re-asks the running
    again = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    assert all(again[n] == "PRUNED" for n in pruned)
    assert sum(s == "FAIL" for s in again.values()) == 8 - len(pruned)
