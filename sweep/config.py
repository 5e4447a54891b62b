"""The typed schema of a run's config, its validation, and its identity (`run_id`).

The YAML files under `conf/` are the user's view; the dataclasses here are their schema, registered with Hydra's
ConfigStore so a wrong type or an unknown key fails at composition time. `validate` adds the checks a type cannot
express (ranges, choices). Everything after this module receives plain values, never a DictConfig.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import _DEFAULT_MARKER_
from omegaconf.resolvers import oc as _oc

from sweep import schedule as _schedule
from sweep.data import DataConfig
from sweep.errors import ConfigError
from sweep.identity import DATA_FETCH_KEYS, DATA_PATH_KEYS, NON_SEMANTIC_KEYS
from sweep.optim import registry as optimizer_registry
from sweep.optim.spec import finite as _finite
from sweep.study import PRUNERS, SAMPLERS


# --------------------------------------------------------------------------------------------- optimizers
def _optimizer_schema() -> type:
    """OptimizerConfig: `name`, `impl`, and every knob of every optimizer in sweep/optim/ (their specs say which
    knobs each reads; `validate` refuses the others). Built from the registry, so a new optimizer module brings
    its knobs with it."""
    fields: list[tuple[str, Any, Any]] = [
        ("name", str, field(default="sgd")),  # one of registry.OPTIMIZERS
        ("impl", str, field(default="scratch")),  # scratch (sweep.optim) | torch (torch.optim), to compare the two
    ]
    for name, typ, default in optimizer_registry.schema_fields():
        value = (
            field(default_factory=lambda d=default: copy.deepcopy(d))
            if isinstance(default, (list, dict))
            else field(default=default)
        )
        fields.append((name, typ, value))
    cls = make_dataclass("OptimizerConfig", fields)
    cls.__module__ = __name__
    cls.__doc__ = "Every optimizer's knobs in one schema; `validate` refuses knobs the chosen optimizer does not have."
    return cls


OptimizerConfig = _optimizer_schema()

# Which knobs each optimizer reads; any other knob set away from its default is refused by `validate`.
OPTIMIZER_KNOBS: dict[str, tuple[str, ...]] = {name: spec.knob_names for name, spec in optimizer_registry.SPECS.items()}
LATE_KNOBS = tuple(k.name for k in optimizer_registry.KNOBS.values() if k.added_later)
CUSTOM_ONLY = ("cls", "kwargs")  # a grid `optimizer=custom,adam optimizer.cls=...` leaves them unset for adam


# --------------------------------------------------------------------------------------------- schedules
@dataclass
class ScheduleConfig:
    """A learning-rate schedule: lr(t) for step t, a pure function (see sweep/schedule.py)."""

    name: str = "constant"  # constant | step | exponential | inverse_time | cosine | warmup_cosine | linear | onecycle
    step_size: int = 100  # step: steps between decays
    gamma: float = 0.1  # step, exponential: decay factor (exponential: per step)
    decay: float = 0.01  # inverse_time: lr0 / (1 + decay * t)
    min_lr: float = 0.0  # cosine, warmup_cosine: final learning rate
    warmup_steps: int = 0  # warmup_cosine: steps of linear warm-up from 0
    pct_start: float = 0.3  # onecycle: fraction of the run spent increasing
    div_factor: float = 25.0  # onecycle: initial lr = lr / div_factor
    final_div_factor: float = 1e4  # onecycle: final lr = initial lr / final_div_factor
    # step, exponential, inverse_time: the clock that step_size, gamma and decay count. 0 = optimizer steps;
    # n > 0 = ticks of round(total steps / n) steps: `${epochs}` counts epochs ("halve every 3 epochs":
    # step_size=3 gamma=0.5; "1/t per epoch": decay=1), 100 counts per cent of the run
    ticks_per_run: int = 0


SCHEDULES = ("constant", "step", "exponential", "inverse_time", "cosine", "warmup_cosine", "linear", "onecycle")


def _schedule_knobs() -> dict[str, tuple[str, ...]]:
    """Which ScheduleConfig knobs each schedule reads: the keyword-only parameters of its function in
    sweep/schedule.py, so this table cannot drift from the code that uses the knobs."""
    table = {}
    for name in SCHEDULES:
        params = inspect.signature(_schedule.SCHEDULES[name]).parameters.values()
        table[name] = tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
    return table


# Which knobs each schedule reads; any other knob set away from its default is refused by `validate`
# (it would change run_id without changing the run).
SCHEDULE_KNOBS: dict[str, tuple[str, ...]] = _schedule_knobs()


# --------------------------------------------------------------------------------------------- init, model
@dataclass
class InitConfig:
    """How weights start (see sweep/init.py)."""

    name: str = (
        "lecun_normal"  # lecun_normal | he_normal | xavier_normal | xavier_uniform | orthogonal | normal | zeros
    )
    std: float = 0.01  # normal: the fixed standard deviation
    scale: float = 1.0  # multiplies every initial weight (to show too-large / too-small inits)
    bias: float = 0.0  # every bias starts at this constant


INITS = ("lecun_normal", "he_normal", "xavier_normal", "xavier_uniform", "orthogonal", "normal", "zeros")

# Which knobs each init reads (sweep/init.py: only `normal` draws with `std`; all-zero weights times `scale`
# stay zero; every init sets the biases to `bias`). Others set away from their default are refused.
INIT_KNOBS: dict[str, tuple[str, ...]] = {
    name: ("bias",) if name == "zeros" else ("std", "scale", "bias") if name == "normal" else ("scale", "bias")
    for name in INITS
}


@dataclass
class ModelConfig:
    """An MLP: inputs -> hidden layers -> outputs (sizes of inputs/outputs come from the dataset)."""

    hidden: list[int] = field(default_factory=lambda: [64, 64])  # widths of the hidden layers
    activation: str = "relu"  # relu | tanh | sigmoid | gelu


ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")


# --------------------------------------------------------------------------------------------- tracking, cluster
@dataclass
class WandbConfig:
    """Weights & Biases. Not part of a run's identity."""

    mode: str = "offline"  # offline (default: compute nodes often have no internet) | online | disabled
    project: str = "sweep"
    entity: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    group: Optional[str] = None  # default: the sweep's name
    name: Optional[str] = None  # default: the swept values (a grid) or the run id
    notes: Optional[str] = None
    job_type: str = "train"
    init_timeout_s: float = 15.0  # online only: give up and fall back to offline after this long


@dataclass
class ClusterConfig:
    """Where a multirun's packs execute (see sweep/launch/). Not part of a run's identity."""

    name: str = "local"  # local | slurm (profiles such as dev set the slurm fields)
    backend: str = "local"  # local | slurm
    workers: int = 1  # local: packs trained at once (processes)
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    timeout_min: int = 60  # SLURM time limit per array task
    cpus_per_task: int = 1
    mem_gb: Optional[float] = None
    gpus_per_node: int = 0
    constraint: Optional[str] = None
    array_parallelism: int = 64  # array tasks running at once
    max_num_timeout: int = 3  # requeues after a time limit / preemption before giving up
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # extra sbatch flags, e.g. {mail-type: END}
    setup: list[str] = field(default_factory=list)  # shell lines run before each task (module load ..., source venv)
    wait: bool = False  # slurm: block until every job of the sweep has ended, then summarise


# --------------------------------------------------------------------------------------------- search
@dataclass
class SearchConfig:
    """How a multirun explores its space (sweep/search.py). Not part of a run's identity."""

    name: str = "grid"  # grid (every combination) | random | tpe (Optuna's samplers)
    trials: int = 64  # random, tpe: trials to complete (pruned ones count)
    batch: int = 0  # trials asked at once and trained as packs; 0: the pack size (pack=auto: 64 on CPU, 1024 GPU)
    pruner: str = "none"  # none | asha | hyperband | median (Optuna's), deciding at epoch ends on val_loss
    direction: str = "minimize"  # of the objective (top-level `objective`)
    seed: int = 0  # the sampler's
    rungs_per_epoch: int = 1  # pruner: validation loss reported (and trials pruned) this often per epoch
    workers: int = 2  # cluster=slurm: array tasks sharing the study, each asking and training `batch` at a time
    trial: Optional[int] = None  # set by the search for each run: its trial number
    study: Optional[str] = None  # set by the search: the study's journal file


# --------------------------------------------------------------------------------------------- the run
@dataclass
class RunConfig:
    """One training run. Top-level keys are the ones users override most: `sweep run lr=1e-2 epochs=5`."""

    lr: float = 0.1  # base learning rate (the schedule scales it per step)
    batch_size: Any = 64  # an integer, or "full" for full-batch gradient descent
    epochs: int = 20  # passes over the training set (with_replacement: N samples each)
    seed: int = 0  # init and data order; the train/test split is fixed by data.seed
    sampling: str = "shuffle_each_epoch"  # shuffle_each_epoch | shuffle_once | with_replacement
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | float64
    diverge_factor: float = 100.0  # a loss above this multiple of the first loss counts as diverged
    log_every: int = 10  # steps between history rows
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    pack: Any = "auto"  # multirun: models trained together per process, an integer or "auto"
    cuda_graph: bool = True  # on CUDA, replay the step as one captured graph where it applies (same bits)
    compile: bool = False  # torch.compile the step where no CUDA graph applies (long runs; rounding differs)
    step_timeout_s: float = 300.0  # a student's optimizer (optimizer=custom) stepping longer fails its runs: a hang
    out_dir: str = "runs"  # results go to out_dir/name/run_id/
    name: Optional[str] = None  # the sweep's name (wandb group); None: "single", or a timestamp in -m
    objective: str = "final_val_loss"  # -m: the summary value returned to Hydra's sweeper per run (sweep.compose)
    objective_if_failed: float = math.inf  # -m: returned instead for a diverged or collapsed run
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    search: SearchConfig = field(default_factory=SearchConfig)


# What `objective` may name: summary values measured on data the choice may see. Test values are refused: a
# sweeper that chooses on test turns the test set into a second validation set and its numbers into a bias.
OBJECTIVES = ("final_val_loss", "best_val_loss", "final_val_acc", "best_val_acc", "final_train_loss")

SAMPLINGS = ("shuffle_each_epoch", "shuffle_once", "with_replacement")

# Schedule knobs added after run ids were first made, and their unset value: left out of run_id while unset.
LATE_SCHEDULE_KNOBS = {"ticks_per_run": 0}

# The only keys whose values may read the environment (`${oc.env:...}`): Hydra's own node, and the shell lines
# run before each SLURM task. Every other value is written to folder names, config.yaml or wandb.
ENV_ALLOWED_KEYS = ("hydra", "cluster.setup")


@dataclass
class SweepLauncherConf:
    """`hydra/launcher=sweep` (hydra_plugins/sweep_launcher holds the class)."""

    _target_: str = "hydra_plugins.sweep_launcher.sweep_launcher.SweepLauncher"


@dataclass
class SweepSweeperConf:
    """`hydra/sweeper=sweep`: Hydra's BasicSweeperConf's fields, our class."""

    _target_: str = "hydra_plugins.sweep_launcher.sweep_launcher.SweepSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[dict[str, str]] = None


def register_configs() -> None:
    """Register the schema that conf/config.yaml starts from: every group's YAML is merged into a typed node,
    so an unknown key or a wrong type fails at composition, before anything runs. Also the configs of sweep's
    Hydra plugins (their classes are registered by the entry point, sweep.app), and guard `${oc.env:...}`
    (see `_guarded_env`)."""
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    store.store(group="hydra/launcher", name="sweep", node=SweepLauncherConf, provider="sweep")
    store.store(group="hydra/sweeper", name="sweep", node=SweepSweeperConf, provider="sweep")
    OmegaConf.register_new_resolver("oc.env", _guarded_env, replace=True)


def _env_allowed(full_key: str) -> bool:
    """True when the config key `full_key` (e.g. `cluster.setup[0]`) may read the environment."""
    return any(full_key == k or full_key.startswith((k + ".", k + "[")) for k in ENV_ALLOWED_KEYS)


def _guarded_env(key: str, default: Any = _DEFAULT_MARKER_, *, _node_: Any) -> Optional[str]:
    """OmegaConf's `oc.env`, refused (ConfigError) in any value that sweep writes or uploads: a secret such as
    `name=${oc.env:WANDB_API_KEY}` would land in folder names, config.yaml and wandb. A resolver, because it
    sees every resolution (single runs and each grid point alike) and knows which key is being resolved."""
    full_key = _node_._get_full_key(None)
    if not _env_allowed(full_key):
        raise ConfigError(
            f"{full_key} reads the environment (${{oc.env:{key}}}), but its value is written to "
            "folder names, config.yaml and wandb: put the value itself (secrets such as "
            "WANDB_API_KEY stay in the environment, read by wandb itself)"
        )
    return _oc.env(key, default)


# --------------------------------------------------------------------------------------------- validation
def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


class _Attrs(dict):
    """Read a plain nested dict as c.key.sub (validation runs per grid point: plain dicts are fast)."""

    def __getattr__(self, key: str) -> Any:
        v = self[key]
        return _Attrs(v) if isinstance(v, dict) else v


def validate(cfg: DictConfig | dict) -> None:
    """Raise ConfigError (one line) for the first value a type cannot reject: ranges, choices, knob/optimizer fit,
    names that are paths, secrets in values. Torch-free; checks needing the data or the device live elsewhere
    (`check_schedule_fits`, sweep.app)."""
    c = _Attrs(OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg)
    bs = c.batch_size
    if not (_positive_int(bs) or bs == "full"):
        raise ConfigError(
            f"batch_size={bs!r} is invalid: use a positive integer or 'full' (full-batch gradient descent)"
        )
    if not _positive_int(c.epochs):
        raise ConfigError(f"epochs={c.epochs!r} is invalid: use a positive integer")
    if not (_finite(c.lr) and c.lr > 0):
        raise ConfigError(f"lr={c.lr!r} is invalid: use a positive finite float, e.g. lr=1e-3")
    if not (_int_at_least(c.seed, 0) and c.seed < 2**63):
        raise ConfigError(f"seed={c.seed!r} is invalid: use an integer with 0 <= seed < 2**63")
    if c.sampling not in SAMPLINGS:
        raise ConfigError(f"sampling={c.sampling!r} is unknown; choices: {', '.join(SAMPLINGS)}")
    if c.dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype={c.dtype!r} is unknown; choices: float32, float64")
    if not (c.device in ("auto", "cpu", "cuda") or str(c.device).startswith("cuda:")):
        raise ConfigError(f"device={c.device!r} is unknown; choices: auto, cpu, cuda, cuda:N")
    if not c.diverge_factor > 1:
        raise ConfigError(f"diverge_factor={c.diverge_factor!r} is invalid: use a number > 1")
    for key in ("log_every", "checkpoint_every"):
        if not _positive_int(c[key]):
            raise ConfigError(f"{key}={c[key]!r} is invalid: use a positive integer (steps)")
    if not c.step_timeout_s > 0:  # also refuses NaN; inf means no limit
        raise ConfigError(f"step_timeout_s={c.step_timeout_s!r} is invalid: use seconds > 0 (inf: no limit)")
    if not (c.pack == "auto" or _positive_int(c.pack)):
        raise ConfigError(f"pack={c.pack!r} is invalid: use a positive integer or 'auto'")
    if c.name is not None:
        _validate_name(c.name)
    _validate_optimizer(c.optimizer)
    if c.optimizer.name == "gd" and bs != "full":
        raise ConfigError(
            f"optimizer=gd is full-batch gradient descent but batch_size={bs!r}: "
            "drop batch_size, or use optimizer=sgd for minibatches"
        )
    _validate_schedule(c.schedule)
    _validate_init(c.init)
    if c.model.activation not in ACTIVATIONS:
        raise ConfigError(f"model.activation={c.model.activation!r} is unknown; choices: {', '.join(ACTIVATIONS)}")
    if not all(_positive_int(h) for h in c.model.hidden):
        raise ConfigError(
            f"model.hidden={list(c.model.hidden)!r} is invalid: use a list of positive widths, e.g. [64,64]"
        )
    if c.wandb.mode not in ("offline", "online", "disabled"):
        raise ConfigError(f"wandb.mode={c.wandb.mode!r} is unknown; choices: offline, online, disabled")
    _validate_cluster(c.cluster)
    _validate_search(c.search)
    objective = c.get("objective", OBJECTIVES[0])
    if objective not in OBJECTIVES:
        why = " (a choice made on test leaks the test set into it)" if "test" in str(objective) else ""
        raise ConfigError(f"objective={objective!r} is not allowed{why}; choices: {', '.join(OBJECTIVES)}")
    _refuse_secret(c, os.environ.get("WANDB_API_KEY"))


def _refuse_unused_knobs(group: str, o: _Attrs, defaults: Any, knobs: tuple[str, ...], choice: str) -> None:
    """Refuse a knob of `group` that the chosen option does not read, set away from the schema default: it would
    change run_id (and the user's expectations) without changing the run."""
    for key, default in vars(defaults).items():
        if key in ("name", "impl") or key in knobs:
            continue
        if o[key] != default:
            its = ", ".join(knobs) if knobs else "none"
            raise ConfigError(f"{group}.{key} does not apply to {group}={choice}; its knobs: {its}")


def _validate_optimizer(o: _Attrs) -> None:
    """Choice, implementation, knobs that apply, each knob's range and the optimizer's rules across knobs, all
    from its spec (sweep/optim/<module>.py)."""
    if o.name not in optimizer_registry.SPECS:
        raise ConfigError(f"optimizer.name={o.name!r} is unknown; choices: {', '.join(optimizer_registry.OPTIMIZERS)}")
    spec = optimizer_registry.spec_of(o.name)
    if o.impl not in ("scratch", "torch"):
        raise ConfigError(f"optimizer.impl={o.impl!r} is unknown; choices: scratch, torch")
    if o.impl == "torch" and spec.updater != "custom" and spec.torch_class is None:
        raise ConfigError(f"optimizer.impl=torch is not available for {o.name} (torch.optim has no such optimizer)")
    _refuse_unused_knobs("optimizer", o, OptimizerConfig(), spec.knob_names, o.name)
    for knob in spec.knobs:
        if knob.type is float and not _finite(o[knob.name]):  # nan passes no range check but by accident
            raise ConfigError(f"optimizer.{knob.name}={o[knob.name]!r} is invalid: use a finite number")
        if not knob.valid(o[knob.name]):
            raise ConfigError(f"optimizer.{knob.name}={_shown(o[knob.name])} is invalid: use {knob.rule}")
    problem = spec.check(o)
    if problem:
        raise ConfigError(problem)


def _shown(value: Any) -> str:
    return repr(list(value)) if isinstance(value, (list, tuple)) else repr(value)


def _validate_schedule(s: _Attrs) -> None:
    """Choice, knobs that apply, and each knob's range (those that need the run's length: `check_schedule_fits`)."""
    if s.name not in SCHEDULES:
        raise ConfigError(f"schedule.name={s.name!r} is unknown; choices: {', '.join(SCHEDULES)}")
    _refuse_unused_knobs("schedule", s, ScheduleConfig(), SCHEDULE_KNOBS[s.name], s.name)
    for key in ("gamma", "decay", "min_lr", "pct_start", "div_factor", "final_div_factor"):
        if not _finite(s[key]):
            raise ConfigError(f"schedule.{key}={s[key]!r} is invalid: use a finite number")
    if not _positive_int(s.step_size):
        raise ConfigError(f"schedule.step_size={s.step_size!r} is invalid: use a positive integer (steps or ticks)")
    if not _int_at_least(s.ticks_per_run, 0):
        raise ConfigError(
            f"schedule.ticks_per_run={s.ticks_per_run!r} is invalid: use 0 (count steps) or a positive integer "
            "(ticks per run, e.g. ${epochs} to count epochs)"
        )
    if not s.gamma > 0:  # gamma <= 0 flips the sign of the rate or zeroes it; gamma > 1 (a growing rate) is allowed
        raise ConfigError(f"schedule.gamma={s.gamma!r} is invalid: use gamma > 0 (gamma < 1 decays the rate)")
    if not s.decay >= 0:  # 1 + decay*t would reach 0: an infinite, then negative, rate
        raise ConfigError(f"schedule.decay={s.decay!r} is invalid: use decay >= 0 (lr / (1 + decay * t))")
    if not (_int_at_least(s.warmup_steps, 0) and s.min_lr >= 0):
        raise ConfigError("schedule.warmup_steps and schedule.min_lr must be >= 0")
    if not 0 < s.pct_start < 1:
        raise ConfigError(f"schedule.pct_start={s.pct_start!r} is invalid: use 0 < pct_start < 1")
    if not (s.div_factor > 0 and s.final_div_factor > 0):
        raise ConfigError("schedule.div_factor and schedule.final_div_factor must be > 0")


def _validate_init(i: _Attrs) -> None:
    if i.name not in INITS:
        raise ConfigError(f"init.name={i.name!r} is unknown; choices: {', '.join(INITS)}")
    _refuse_unused_knobs("init", i, InitConfig(), INIT_KNOBS[i.name], i.name)
    if not (_finite(i.std) and i.std > 0):
        raise ConfigError(f"init.std={i.std!r} is invalid: use a finite std > 0")
    if not (_finite(i.scale) and i.scale >= 0):
        raise ConfigError(f"init.scale={i.scale!r} is invalid: use a finite scale >= 0")
    if not _finite(i.bias):
        raise ConfigError(f"init.bias={i.bias!r} is invalid: use a finite number")


def _validate_cluster(k: _Attrs) -> None:
    """Resources a scheduler would misread: e.g. timeout_min=-5 became a 2,982,611-day limit."""
    if k.backend not in ("local", "slurm"):
        raise ConfigError(f"cluster.backend={k.backend!r} is unknown; choices: local, slurm")
    for key, low in (
        ("timeout_min", 1),
        ("cpus_per_task", 1),
        ("gpus_per_node", 0),
        ("array_parallelism", 1),
        ("max_num_timeout", 0),
        ("workers", 1),
    ):
        if not _int_at_least(k[key], low):
            raise ConfigError(f"cluster.{key}={k[key]!r} is invalid: use an integer >= {low}")
    if k.mem_gb is not None and not (_finite(k.mem_gb) and k.mem_gb > 0):
        raise ConfigError(
            f"cluster.mem_gb={k.mem_gb!r} is invalid: use a number of GB > 0, or null (the partition's default)"
        )


def _validate_search(s: _Attrs) -> None:
    if s.name not in SAMPLERS:
        raise ConfigError(f"search.name={s.name!r} is unknown; choices: {', '.join(SAMPLERS)}")
    if s.pruner not in PRUNERS:
        raise ConfigError(f"search.pruner={s.pruner!r} is unknown; choices: {', '.join(PRUNERS)}")
    if s.pruner != "none" and s.name == "grid":
        raise ConfigError("search.pruner needs a search (search=random or search=tpe); a grid trains every point")
    if s.direction not in ("minimize", "maximize"):
        raise ConfigError(f"search.direction={s.direction!r} is unknown; choices: minimize, maximize")
    for key, low in (("trials", 1), ("batch", 0), ("seed", 0), ("workers", 1), ("rungs_per_epoch", 1)):
        if not _int_at_least(s[key], low):
            raise ConfigError(f"search.{key}={s[key]!r} is invalid: use an integer >= {low}")


# Characters that would make a sweep name a path, a hidden folder, or unreadable in a terminal.
_NAME_FORBIDDEN = ("/", "\\", "..")


def _validate_name(name: Any) -> None:
    """A sweep name becomes the folder out_dir/name: refuse anything that is a path rather than a name."""
    text = str(name)
    if (
        not text.strip()
        or any(f in text for f in _NAME_FORBIDDEN)
        or text.startswith(".")
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in text)
    ):
        raise ConfigError(
            f"name={text!r} is invalid: a sweep name is a folder name under out_dir, not a path: "
            "no '/', '\\', '..', leading '.', control characters, and not empty "
            "(use out_dir=... to choose where results go)"
        )


def _refuse_secret(c: dict, secret: Optional[str]) -> None:
    """Refuse any value that contains `secret` (the WANDB_API_KEY environment value), naming its key but never
    the value: it would be written to folder names, config.yaml and wandb. cluster.setup may hold it (shell
    lines that only run)."""
    if not secret or len(secret) < 8:  # too short to tell a key from an ordinary value
        return

    def walk(value: Any, key: str) -> None:
        if _env_allowed(key):
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
        elif isinstance(value, str) and secret in value:
            raise ConfigError(
                f"{key} contains the value of the environment variable WANDB_API_KEY, and would be "
                "written to folder names, config.yaml and wandb: remove it (wandb reads the key "
                "from the environment itself)"
            )

    walk(c, "")


def check_schedule_fits(cfg: dict, total_steps: int) -> None:
    """Raise ConfigError when the schedule of the resolved config `cfg` does not fit a run of `total_steps`
    optimizer steps (t = 0 .. total_steps-1): a warm-up as long as the run, a step decay that never happens
    (the run silently equals schedule=constant), a one-cycle peak outside the run. Pure; the caller knows
    total_steps (epochs x steps per epoch, from the dataset's size)."""
    s = cfg["schedule"]
    name = s["name"]
    ticks = s.get("ticks_per_run", 0) or 0
    if ticks > total_steps:
        raise ConfigError(
            f"schedule.ticks_per_run={ticks} is more ticks than the run has steps ({total_steps}): "
            f"use ticks_per_run <= {total_steps}, or 0 to count steps"
        )
    tick = max(round(total_steps / ticks), 1) if ticks else 1
    if name == "warmup_cosine" and s["warmup_steps"] >= total_steps:
        raise ConfigError(
            f"schedule.warmup_steps={s['warmup_steps']} is not shorter than the run "
            f"({total_steps} steps): use warmup_steps < {total_steps}, or more epochs"
        )
    if name == "step" and s["step_size"] * tick >= total_steps:
        unit = f", counted in ticks of {tick} steps (schedule.ticks_per_run={ticks})" if ticks else ""
        raise ConfigError(
            f"schedule.step_size={s['step_size']} is at or beyond the end of the run "
            f"({total_steps} steps){unit}, so the rate never decays: use step_size < {-(-total_steps // tick)}, "
            "more epochs, or schedule=constant"
        )
    if name == "onecycle" and not 1 < s["pct_start"] * total_steps < total_steps:
        raise ConfigError(
            f"schedule.pct_start={s['pct_start']} leaves no warm-up phase in a run of {total_steps} "
            "steps: use 1/steps < pct_start < 1, or more epochs"
        )


# --------------------------------------------------------------------------------------------- identity
def semantic_config(cfg: DictConfig | dict) -> dict:
    """The part of a resolved config that determines what a run computes: no names, tracking, cluster or
    execution settings, and no data paths (moving the data must not retrain a sweep)."""
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    sem = {k: v for k, v in c.items() if k not in NON_SEMANTIC_KEYS and k != "hydra"}
    o = sem.get("optimizer")
    if isinstance(o, dict) and o.get("name") in optimizer_registry.SPECS:
        # knobs added later (custom's cls/kwargs, anneal's relative_temperature), unread by this optimizer: left
        # out so that ids of runs made before they existed stay the same
        reads = optimizer_registry.knobs_read(o["name"])
        sem["optimizer"] = {k: v for k, v in o.items() if k in reads or k not in LATE_KNOBS}
    if isinstance(sem.get("schedule"), dict):  # likewise schedule knobs added later, while they are unset
        sem["schedule"] = {k: v for k, v in sem["schedule"].items() if LATE_SCHEDULE_KNOBS.get(k, ...) != v}
    if isinstance(sem.get("data"), dict):
        sem["data"] = {
            k: (None if k in DATA_PATH_KEYS else v) for k, v in sem["data"].items() if k not in DATA_FETCH_KEYS
        }
    return sem


def run_id(cfg: DictConfig | dict) -> str:
    """A short stable hash of the semantic config: the same config gives the same id on any machine."""
    blob = json.dumps(semantic_config(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
