"""Search (sweep/search.py, sweep/pruning.py): Optuna asks trials in batches, sweep trains them as packs and
prunes inside packs; the study lives in the sweep's folder and a second run of the command continues it."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from conftest import make_cfg, sweep_cli

from sweep import store
from sweep.config import ConfigError, run_id
from sweep.search import parse_space
from sweep.study import STUDY_FILE, open_study

SMALL = ["model.hidden=[16]", "wandb.mode=disabled", "data=spirals", "data.n_samples=300", "batch_size=50"]
SPACE = ["lr=tag(log, interval(1e-3, 1))", "optimizer=sgd,adam"]


def _search(out: Path, *args: str, check: bool = True):
    return sweep_cli("run", "-m", *args, *SPACE, *SMALL, f"out_dir={out}", check=check)


def _summaries(folder: Path) -> dict[str, dict]:
    """{run_id: summary} of every run the sweep folder holds a summary of."""
    return {rid: r.summary for rid, r in store.scan(folder).items() if r.summary is not None}


def _study(out: Path, pruner: str = "none", epochs: int = 1):
    (journal,) = out.glob(f"*/{STUDY_FILE}")
    search = {"name": "random", "seed": 0, "pruner": pruner, "direction": "minimize"}
    return journal.parent, open_study(journal, search, epochs, create=False)


def test_trials_are_asked_a_pack_at_a_time_unless_told():
    from sweep.search import batch_size

    assert batch_size({"batch": 8}, "auto", "cpu") == 8
    assert batch_size({"batch": 0}, 32, "cpu") == 32
    assert batch_size({"batch": 0}, "auto", "cpu") == 64  # pack=auto's cap on a CPU


def test_the_space_is_hydras_sweep_grammar():
    space = parse_space(["lr=tag(log, interval(1e-4, 1))", "optimizer=sgd,adam", "seed=range(0,3)", "epochs=5"])
    assert space.fixed == ("epochs=5",)
    assert space.params["lr"] == optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)
    assert space.params["optimizer"].choices == ("sgd", "adam")
    assert space.params["seed"].choices == ("0", "1", "2")
    assert space.overrides({"lr": 0.01, "optimizer": "adam"}) == ["epochs=5", "lr=0.01", "optimizer=adam"]


@pytest.mark.parametrize(
    "argument, message",
    [
        ("lr=interval(1, 0.001)", "the interval is empty; use interval(low, high) with low < high"),
        ("lr=tag(log, interval(0, 1))", "a log-scale interval needs low > 0 (got 0.0)"),
        ("model.hidden=glob(*)", "a search takes comma lists, choice(), range() and interval() sweeps"),
    ],
)
def test_a_space_that_cannot_be_searched_is_refused_in_one_line(argument, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_space([argument])


@pytest.mark.parametrize(
    "args, message",
    [
        (["search=random", "lr=interval(1, 0.001)"], "the interval is empty"),
        (["search=random", "search.pruner=sometimes"], "search.pruner='sometimes' is unknown"),
        (["search.name=annealing", "lr=1e-3,1e-2"], "search.name='annealing' is unknown; choices: grid, random, tpe"),
    ],
)
def test_bad_searches_are_refused_before_anything_runs(tmp_path, args, message):
    proc = sweep_cli("run", "-m", *args, *SMALL, f"out_dir={tmp_path}")
    assert proc.returncode != 0
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not list(tmp_path.rglob("summary.json"))  # no summary in any layout


def test_a_random_search_asks_what_optunas_own_sequential_study_asks(tmp_path):
    """Asked 3 at a time and trained as packs, the trials are the ones a plain sequential Optuna study with the
    same seed draws, and each run trains its trial's parameters."""
    _search(tmp_path, "search=random", "search.trials=6", "search.batch=3", "search.seed=7", "epochs=1")
    folder, study = _study(tmp_path)
    ref = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    for _ in range(6):
        t = ref.ask()
        t.suggest_float("lr", 1e-3, 1.0, log=True)
        t.suggest_categorical("optimizer", ["sgd", "adam"])
        ref.tell(t, 0.0)
    assert [t.params for t in study.trials] == [t.params for t in ref.trials]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(_summaries(folder)) == 6
    for t in study.trials:  # each trial's parameters are its run's, and its value the run's objective
        cfg = make_cfg(tmp_path, f"lr={t.params['lr']!r}", f"optimizer={t.params['optimizer']}", *SMALL, "epochs=1")
        s = store.summary(folder, run_id(cfg))
        assert t.value == (s["final_val_loss"] if s["status"] == "done" else float("inf")), s["status"]


def test_the_same_command_continues_the_study(tmp_path):
    """Run again with more trials, the search keeps its study and folder and adds only the missing trials."""
    _search(tmp_path, "search=random", "search.trials=3", "search.batch=2", "epochs=1", "name=again")
    _search(tmp_path, "search=random", "search.trials=5", "search.batch=2", "epochs=1", "name=again")
    folder, study = _study(tmp_path)
    assert folder.name == "again"
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5
    assert len(_summaries(folder)) == len({json.dumps(t.params) for t in study.trials}) == 5


def test_the_report_of_a_search_draws_best_so_far_and_importances(tmp_path):
    _search(tmp_path, "search=random", "search.trials=8", "search.batch=4", "epochs=1")
    folder, _ = _study(tmp_path)
    proc = sweep_cli("report", str(folder), check=True)
    assert (folder / "report" / "search.png").is_file(), proc.stdout
    report = (folder / "report" / "report.md").read_text()
    assert "best validation loss" in report and "model-epochs" in report
    status = sweep_cli("status", str(folder), "--no-slurm", check=True).stdout
    assert "search: 8 trials (8 complete); best so far" in " ".join(status.split())


def test_two_identical_searches_at_once_complete_the_trials_asked_for_not_twice(tmp_path):
    """The SLURM workers asked under a lock, the local loop did not: two identical local searches at once
    completed 8 trials for search.trials=4. Both now ask under the study's lock, counting running trials."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "sweep.cli", "run", "-m", "search=random", "search.trials=4", "search.batch=2",
           "name=twice", *SPACE, *SMALL, f"out_dir={tmp_path}"]  # fmt: skip
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out + err
    _, study = _study(tmp_path)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and len(states) == 4, states


@pytest.mark.faults
def test_reusing_a_searchs_name_with_another_objective_or_space_is_refused(tmp_path):
    """Reusing name= with another objective silently continued the old study (direction MINIMIZE, losses mixed
    with accuracies); changing lr from interval to choice gave a traceback. Both are now one line, exit 2, and
    the study is left as it was."""
    _search(tmp_path, "search=random", "search.trials=2", "search.batch=2", "epochs=1", "name=s")
    p = _search(tmp_path, "search=random", "search.trials=4", "search.batch=2", "epochs=1", "name=s",
                "objective=final_val_acc", "search.direction=maximize", check=False)  # fmt: skip
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip() == (
        "sweep: error: name=s already holds a search with objective=final_val_loss, direction=minimize; this "
        "command changes objective, direction: use another name= (or the same objective and space to continue "
        "that study)"
    )
    p = sweep_cli("run", "-m", "search=random", "search.trials=4", "search.batch=2", "epochs=1", "name=s",
                  "lr=choice(0.01,0.1)", "optimizer=sgd,adam", *SMALL, f"out_dir={tmp_path}")  # fmt: skip
    assert p.returncode == 2 and "this command changes the space of lr: use another name=" in p.stderr, p.stderr
    _, study = _study(tmp_path)
    assert len(study.trials) == 2  # nothing asked by the refused commands
    _search(tmp_path, "search=random", "search.trials=3", "search.batch=2", "epochs=1", "name=s")  # continues
    _, study = _study(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
