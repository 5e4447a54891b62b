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


def journal_storage(path: Path | str) -> Any:
    """Optuna's journal storage on `path`, after mending what a killed or starved process can leave:

    - a torn last record (a full disk, a kill mid-write): Optuna's reader fails on it with a JSONDecodeError,
      so every later `sweep status` and the search itself crashed. The torn bytes are moved aside to
      `<journal>.torn-<n>` (one line on stderr) and the complete records kept;
    - a lock symlink that points at nothing (its process was killed, then the folder moved): Optuna's lock
      spins on it at full CPU for ever, so it is removed (one line on stderr).
    """
    import os
    import sys

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = Path(path)
    lock = Path(str(path) + ".lock")
    if lock.is_symlink() and not lock.exists():
        lock.unlink(missing_ok=True)
        print(f"sweep: removed {lock}: a lock left by a killed process, pointing at nothing", file=sys.stderr)
    if path.exists():  # under the journal's own lock: a worker appending now is not a torn record
        held = JournalFileSymlinkLock(os.fspath(path))
        held.acquire()
        try:
            _mend_torn_tail(path)
        finally:
            held.release()
    return JournalStorage(JournalFileBackend(os.fspath(path)))


def _mend_torn_tail(path: Path) -> None:
    """Move a journal's torn last record (no newline, or a last line that is not JSON) aside."""
    import json
    import sys

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if not data:
        return
    if data.endswith(b"\n"):  # whole lines: the last one must be a record
        keep = data.rfind(b"\n", 0, len(data) - 1) + 1
        try:
            json.loads(data[keep:])
            return
        except ValueError:
            pass
    else:  # Optuna writes each record with its newline: bytes after the last one are a torn write
        keep = data.rfind(b"\n") + 1
    tail = data[keep:]
    n = 1
    while Path(f"{path}.torn-{n}").exists():
        n += 1
    Path(f"{path}.torn-{n}").write_bytes(tail)
    with open(path, "r+b") as f:
        f.truncate(keep)
    print(f"sweep: {path} ended in a torn record ({len(tail)} bytes), moved to {path}.torn-{n}", file=sys.stderr)


def open_study(path: Path | str, search: dict, epochs: int, *, create: bool) -> Any:
    """The study of a search folder's journal (created when `create`)."""
    import optuna

    storage = journal_storage(path)
    pruner = make_pruner(search["pruner"], epochs * int(search.get("rungs_per_epoch", 1)))
    # Optuna's INFO lines ("Using an existing study ...", one per trial told) bury sweep's own progress lines
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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

    return optuna.load_study(study_name=STUDY_NAME, storage=journal_storage(journal))


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
