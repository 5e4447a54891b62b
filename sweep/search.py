"""Search beyond the grid: Optuna asks trials K at a time, sweep trains each batch as packs, Optuna is told.

    sweep run -m search=tpe search.trials=128 optimizer=sgd,momentum,adam 'lr=tag(log, interval(1e-4, 1))'

The search space is written in Hydra's own sweep grammar: a comma list, `choice(...)` or `range(...)` is a
categorical parameter; `interval(low, high)` a float one (`tag(log, interval(...))` on a log scale, `tag(int,
interval(...))` an integer). Any other override is fixed for every trial.

The study lives in the sweep's folder (Optuna's journal file storage: no database server, safe on shared
filesystems), so the same command run again continues it: trials a killed process left running are failed and
asked again with the same parameters (their runs resume from their checkpoints), and the search stops when
`search.trials` trials have completed or been pruned. With `search.pruner`, every trial reports its validation
loss at epoch ends from inside its pack (sweep/pruning.py); a pruned model leaves its pack exactly as a diverged
one does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shlex
import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from sweep.errors import ConfigError
from sweep.results import pid_alive
from sweep.study import (
    PRUNED_AT,
    STUDY_FILE,
    _as_override,
    make_sampler,
    open_study,
)


@dataclass(frozen=True)
class Space:
    """A search space: the overrides fixed for every trial, and the swept parameters as Optuna distributions."""

    fixed: tuple[str, ...]
    params: dict[str, Any]  # override key -> optuna distribution

    def overrides(self, values: dict[str, Any]) -> list[str]:
        """The overrides of one trial with parameter values `values`."""
        return [*self.fixed, *(f"{k}={_as_override(v)}" for k, v in values.items())]


def parse_space(arguments: Sequence[str]) -> Space:
    """Hydra's command-line overrides -> a Space; ConfigError (one line) for a space that cannot be searched."""
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    fixed: list[str] = []
    params: dict[str, Any] = {}
    for o in OverridesParser.create().parse_overrides(list(arguments)):
        key = o.get_key_element()
        if not o.is_sweep_override():
            fixed.append(o.input_line)
            continue
        sweep = o.value()
        tags = set(getattr(sweep, "tags", set()) or set())
        if isinstance(sweep, IntervalSweep):
            low, high = sweep.start, sweep.end
            if not low < high:
                raise ConfigError(f"{o.input_line}: the interval is empty; use interval(low, high) with low < high")
            if "log" in tags and low <= 0:
                raise ConfigError(f"{o.input_line}: a log-scale interval needs low > 0 (got {low})")
            if "int" in tags:
                if low != int(low) or high != int(high):
                    raise ConfigError(f"{o.input_line}: an integer interval needs integer bounds")
                params[key] = optuna.distributions.IntDistribution(int(low), int(high), log="log" in tags)
            else:
                params[key] = optuna.distributions.FloatDistribution(low, high, log="log" in tags)
        elif isinstance(sweep, (ChoiceSweep, RangeSweep)):
            choices = list(dict.fromkeys(o.sweep_string_iterator()))
            if not choices:
                raise ConfigError(f"{o.input_line}: no values to choose from")
            params[key] = optuna.distributions.CategoricalDistribution(choices)
        else:  # glob() and anything newer
            raise ConfigError(f"{o.input_line}: a search takes comma lists, choice(), range() and interval() sweeps")
    if not params:
        raise ConfigError("a search needs at least one swept parameter, e.g. 'lr=tag(log, interval(1e-4, 1))'")
    return Space(tuple(fixed), params)


def search_name(arguments: Sequence[str], search: dict) -> str:
    """A folder name fixed by the command (its overrides and search settings), so the same command continues."""
    key = json.dumps([sorted(arguments), search], sort_keys=True, default=str)
    return f"search-{search['name']}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _asked_by_others(study: Any, me: str) -> bool:
    """Has another process asked trials of this study (a second search started beside this one, or before it)?
    Seeded alike, two searches would propose the same trials, whose runs (one run_id) only one may train."""
    return any(t.user_attrs.get(WORKER, me) != me for t in study.get_trials(deepcopy=False))


def _running(study: Any) -> int:
    """Trials asked and not told yet (another process trains them, or this one will)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _done(study: Any) -> int:
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


WORKER = "worker"  # a trial's user attribute: who asked it (a SLURM task id, or local:<host>:<pid>)


def this_worker() -> str:
    from sweep.provenance import slurm_job_id

    return slurm_job_id() or f"local:{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str, queued: set[str] | None) -> bool:
    """Is the process that asked a trial still there? A SLURM task while squeue lists it (`queued`: squeue's
    task ids, None when SLURM cannot be asked); a local process while its pid lives on this host. What cannot be
    told is taken as alive: a trial is failed only when its asker is known to be gone."""
    if worker.startswith("local:"):
        _, host, pid = worker.split(":", 2)
        if host != socket.gethostname():
            return True
        return not pid.isdigit() or pid_alive(int(pid))
    return queued is None or worker in queued


def retry_stale(study: Any, me: str) -> list[Any]:
    """Trials left running by a process that is gone: failed, and asked again with the same parameters (their
    runs have the same run_id, so they resume from their checkpoints). Returns this worker's own running trials
    (a requeued SLURM task picks up where it was stopped)."""
    from optuna.trial import TrialState

    from sweep.launch.queue import squeue_states

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    others = {t.user_attrs.get(WORKER, "") for t in running} - {me}
    queued = set(squeue_states() or {}) if any(not w.startswith("local:") for w in others) else set()
    mine = []
    for t in running:
        worker = t.user_attrs.get(WORKER, "")
        if worker == me:
            mine.append(t)
        elif not worker or not worker_alive(worker, queued):
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params, skip_if_exists=False)
    return mine


def ask(study: Any, space: Space, n: int, me: str) -> list[Any]:
    trials = [study.ask(space.params) for _ in range(n)]
    for t in trials:
        t.set_user_attr(WORKER, me)
    return trials


def trial_overrides(space: Space, trial: Any, name: str, journal: Path) -> list[str]:
    """The overrides of one trial's run: the fixed ones, its parameters, the sweep folder and its trial."""
    return [*space.overrides(trial.params), f"name={name}", f"search.trial={trial.number}", f"search.study={journal}"]


def tell(study: Any, trial: Any, value: Any) -> bool:
    """Tell the study how `trial` ended: pruned (its pack said so), its objective (a float; diverged and
    collapsed runs give objective_if_failed), or failed (no result: it will be asked again). True unless failed."""
    number = trial.number if hasattr(trial, "number") else int(trial)
    frozen = study.get_trials(deepcopy=False)[number]
    if frozen.state.is_finished():  # told by its pack already (pruned: sweep/pruning.py)
        return frozen.state.name != "FAIL"
    if PRUNED_AT in frozen.user_attrs:  # set by its pack (sweep/pruning.py)
        study.tell(number, state=_state("PRUNED"))
        return True
    if _is_number(value):
        study.tell(number, float(value))
        return True
    study.tell(number, state=_state("FAIL"))
    return False


def prepare(config: Any, arguments: Sequence[str]) -> tuple[dict, Space, str, Path, Any]:
    """What a search's processes share: its settings, space, name, folder and study (created here)."""
    from omegaconf import OmegaConf

    from sweep.compose import resolved

    resolved(config)  # the settings every trial shares (search.*, epochs, ...): refused before anything runs
    search = OmegaConf.to_container(config.search, resolve=True)
    space = parse_space(arguments)  # search=..., search.* are fixed overrides: every trial's run records them
    name = config.name or search_name(arguments, search)
    folder = (Path(config.out_dir) / name).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    study = open_study(folder / STUDY_FILE, search, int(config.epochs), create=True)
    keep_identity(study, study_identity(config.objective, search, space), name)
    if study.trials:  # a continued study: a sampler seeded as at the start would propose its first trials again
        study.sampler = make_sampler(search["name"], search["seed"] + len(study.trials))
    return search, space, name, folder, study


IDENTITY = "sweep_identity"  # the study's user attribute: what its values mean (`study_identity`)


def study_identity(objective: str, search: dict, space: Space) -> dict:
    """What makes a study's values comparable: the objective, its direction, and each parameter's distribution.
    (search.trials, batch and fixed overrides may change between runs of one study: they continue it.)"""
    import optuna

    params = {k: optuna.distributions.distribution_to_json(d) for k, d in sorted(space.params.items())}
    return {"objective": objective, "direction": search["direction"], "space": params}


def keep_identity(study: Any, identity: dict, name: str) -> None:
    """Record `identity` on a study that has none; ConfigError (one line) when the study holds another: reusing
    a search's name= with another objective or space silently mixed losses with accuracies (or a parameter
    sampled from two distributions, a traceback in Optuna)."""
    held = study.user_attrs.get(IDENTITY)
    if held is None:
        study.set_user_attr(IDENTITY, identity)
        return
    if held == identity:
        return
    differs = [k for k in ("objective", "direction") if held.get(k) != identity[k]]
    params = sorted(set(held.get("space", {})) | set(identity["space"]))
    differs += [f"the space of {k}" for k in params if held.get("space", {}).get(k) != identity["space"].get(k)]
    was = ", ".join(f"{k}={held.get(k)}" for k in ("objective", "direction"))
    raise ConfigError(
        f"name={name} already holds a search with {was}; this command changes {', '.join(differs)}: "
        "use another name= (or the same objective and space to continue that study)"
    )


def batch_size(search: dict, pack: Any, device: str) -> int:
    """Trials asked at once: search.batch, else the pack size (`pack`, or for pack=auto the most models a pack
    holds on this device: every batch of trials is one pack where their shapes agree)."""
    from sweep.device import resolve_device
    from sweep.packing import AUTO_PACK_CPU, AUTO_PACK_GPU

    if int(search["batch"]):
        return int(search["batch"])
    if isinstance(pack, int) and not isinstance(pack, bool):
        return pack
    return AUTO_PACK_GPU if resolve_device(device).type == "cuda" else AUTO_PACK_CPU


def run_search(config: Any, launcher: Any, arguments: Sequence[str]) -> Any:
    """`sweep run -m search=random|tpe ...`. Locally: the ask/tell loop, training each batch of trials through
    `launcher` (sweep's: validated, packed). With cluster=slurm: `search.workers` SLURM tasks that each run that
    loop on the shared study (SearchJob, below). Returns the study."""
    search, space, name, folder, study = prepare(config, arguments)
    if config.cluster.backend == "slurm":
        submit_search(config, list(arguments), folder)
        return study
    from filelock import FileLock

    me = this_worker()
    batch, number = batch_size(search, config.pack, config.device), 0
    lock = FileLock(str(folder / (STUDY_FILE + ".ask.lock")))
    reseeded = False
    while True:
        with lock:  # as the SLURM workers do: two searches at once never ask more than the trials left
            retry_stale(study, me)
            if not reseeded and _asked_by_others(study, me):  # another search beside this one: its own stream
                mixed = search["seed"] + len(study.trials) + zlib.crc32(me.encode())
                study.sampler, reseeded = make_sampler(search["name"], mixed), True
            left = int(search["trials"]) - _done(study) - _running(study)
            trials = ask(study, space, min(batch, left), me) if left > 0 else []
        if not trials:
            break
        jobs = [trial_overrides(space, t, name, folder / STUDY_FILE) for t in trials]
        returns = launcher.launch(jobs, initial_job_idx=number)
        number += len(jobs)
        told = [tell(study, t, ret.return_value) for t, ret in zip(trials, returns)]
        if not any(told):
            raise ConfigError(f"every trial of a batch failed (`sweep status {folder}` lists them); the search stops")
    return study


def work(arguments: Sequence[str], folder: Path | str, should_stop: Any = lambda: False) -> dict[str, int]:
    """One worker of a search on SLURM: open the shared study, then until `search.trials` trials are done, ask
    a batch (under a lock, so workers never ask more than the trials left), train it here as packs, tell it.
    A requeued task first finishes its own trials. Returns what it told: {state: count}."""
    from filelock import FileLock
    from hydra import compose, initialize_config_module

    from sweep.compose import objective_value, resolved
    from sweep.runner import train_runs

    folder = Path(folder)
    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        base = compose(config_name="config", overrides=[a for a in arguments if not _is_sweep(a)])
        search = dict(resolved(base)["search"])
        space = parse_space(arguments)
        study = open_study(folder / STUDY_FILE, search, int(base.epochs), create=False)
        me = this_worker()
        # each worker its own stream (the same seed would propose the same trials in every worker)
        study.sampler = make_sampler(search["name"], search["seed"] + len(study.trials) + zlib.crc32(me.encode()))
        told: dict[str, int] = {"told": 0, "failed": 0}
        lock = FileLock(str(folder / (STUDY_FILE + ".ask.lock")))
        batch = batch_size(search, base.pack, base.device)
        while True:
            with lock:
                trials = retry_stale(study, me)
                if not trials:
                    left = int(search["trials"]) - _done(study) - _running(study)
                    trials = ask(study, space, min(batch, left), me) if left > 0 else []
            if not trials:
                return told
            cfgs = [
                resolved(
                    compose(config_name="config", overrides=trial_overrides(space, t, folder.name, folder / STUDY_FILE))
                )
                for t in trials
            ]
            for c in cfgs:
                c["out_dir"] = str(folder.parent)
            summaries = train_runs(cfgs, pack=len(cfgs), should_stop=should_stop, progress=False)
            for t, c, s in zip(trials, cfgs, summaries):
                ok = tell(study, t, objective_value(c, s))
                told["told" if ok else "failed"] += 1


# ----------------------------------------------------------------------------------------------- on SLURM
class SearchJob(submitit.helpers.Checkpointable):
    """One worker of a search (sweep/search.py `work`): asks, trains and tells batches of trials on the shared
    study until `search.trials` are done; on SIGUSR2 it checkpoints its pack and is requeued, then finishes its
    own trials first."""

    def __init__(self, submit_dir: str) -> None:
        self.submit_dir = submit_dir

    def __call__(self, arguments: list[str], folder: str) -> dict[str, int]:
        from sweep.launch.worker import stoppable
        from sweep.provenance import slurm_job_id

        def log() -> None:
            print(f"sweep: search worker {slurm_job_id() or '?'} on {socket.gethostname()}", flush=True)

        with stoppable(self.submit_dir, log) as stop:
            told = work(arguments, folder, should_stop=lambda: stop.requested)
        print(f"sweep: search worker done: {told}", flush=True)
        return told

    def checkpoint(self, arguments: list[str], folder: str) -> submitit.helpers.DelayedSubmission:
        """After a requeue: the worker finishes its own trials (from their checkpoints), then asks for more."""
        return submitit.helpers.DelayedSubmission(self, arguments, folder)


def submit_search(config: Any, arguments: list[str], folder: Path) -> str:
    """Queue `search.workers` array tasks that share the search's study (SearchJob); returns the array
    id. With cluster.wait, blocks until they have ended. The same command run again continues the study."""
    from omegaconf import OmegaConf

    from sweep.launch.queue import wait_for_jobs
    from sweep.launch.slurm import _executor, _now
    from sweep.launch.snapshot import snapshot_code
    from sweep.results import SweepDir, read_json, write_json

    cluster = OmegaConf.to_container(config.cluster, resolve=True)
    workers = int(config.search.workers)
    code_dir = snapshot_code(folder)
    ex = _executor(cluster, folder, code_dir)
    with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's error; it is raised anyway
        jobs = ex.map_array(SearchJob(os.getcwd()), [list(arguments)] * workers, [str(folder)] * workers)
    array_id = jobs[0].job_id.split("_")[0]
    record_path = SweepDir(folder).record
    record = read_json(record_path) or {"name": folder.name, "argv": list(arguments), "created": _now()}
    entry = {"time": _now(), "job_ids": [array_id], "code": str(code_dir), "cluster": cluster.get("name")}
    record.setdefault("slurm", []).append(dict(entry, queued=0, packs=[], search_workers=workers))
    write_json(record_path, record)
    print(
        f"sweep: search {folder.name}: {workers} worker(s) queued as array {array_id} "
        f"(logs: {shlex.quote(str(jobs[0].paths.stdout))}); `sweep status {shlex.quote(str(folder))}` for the table",
        flush=True,
    )
    if cluster.get("wait"):
        wait_for_jobs([array_id])
    return array_id


def _is_sweep(argument: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([argument])[0].is_sweep_override()


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))
