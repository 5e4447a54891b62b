"""A search's study: its journal file in the sweep's folder, the samplers and pruners it may use, opening and
reading it. Torch-free and Hydra-free (`sweep status`, `sweep report` and the config schema read it); Optuna is
imported only when a study is opened.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sweep.errors import ConfigError

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "asha", "hyperband", "median")
STUDY_FILE = "study.journal"
STUDY_NAME = "search"
PRUNED_AT = "pruned_at_epoch"  # a trial's user attribute, set by the pack that pruned it


def make_sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ConfigError(f"search.name={name!r} is not a sampler; choices: {', '.join(SAMPLERS)}")


def make_pruner(name: str, rungs: int) -> Any:
    """Optuna's pruner for `search.pruner`; budgets are in rungs (a trial reports its validation loss at each:
    `search.rungs_per_epoch` per epoch, so `rungs` = epochs x rungs_per_epoch)."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "asha":  # rungs at 1, 3, 9, ...; the best third goes on at each
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=rungs, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    raise ConfigError(f"search.pruner={name!r} is unknown; choices: {', '.join(PRUNERS)}")


def open_study(path: Path | str, search: dict, epochs: int, *, create: bool) -> Any:
    """The study of a search folder's journal (created when `create`)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(path)))
    pruner = make_pruner(search["pruner"], epochs * int(search.get("rungs_per_epoch", 1)))
    if create:
        return optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            sampler=make_sampler(search["name"], search["seed"]),
            pruner=pruner,
            direction=search["direction"],
            load_if_exists=True,
        )
    return optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=pruner)


def read_study(journal: Path | str) -> Any:
    """A search folder's study, to read (no sampler or pruner of its own: `sweep status`, `sweep report`)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name=STUDY_NAME, storage=JournalStorage(JournalFileBackend(str(journal))))


def describe(journal: Path | str) -> str:
    """One line for `sweep status`: the trials by state and the best so far (value, trial, parameters)."""
    study = read_study(journal)
    trials = study.get_trials(deepcopy=False)
    states = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    by_state = ", ".join(f"{n} {s}" for s, n in states.items())
    line = f"search: {len(trials)} trials ({by_state or 'none yet'})"
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if done:
        best = min(done, key=lambda t: t.value if study.direction.name == "MINIMIZE" else -t.value)
        params = " ".join(f"{k}={_as_override(v)}" for k, v in best.params.items())
        line += f"; best so far {best.value:.4g} (trial {best.number}: {params})"
    return line


def _as_override(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
