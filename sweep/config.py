"""The typed schema of a run's config, its validation, and its identity (`run_id`).

The YAML files under `conf/` are the user's view; the dataclasses here are their schema, registered with Hydra's
ConfigStore so a wrong type or an unknown key fails at composition time. `validate` adds the checks a type cannot
express (ranges, choices). Everything after this module receives plain values, never a DictConfig.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from sweep.data import DataConfig
from sweep.errors import ConfigError  # noqa: F401  (re-exported: sweep.config.ConfigError)


# --------------------------------------------------------------------------------------------- optimizers
@dataclass
class OptimizerConfig:
    """Every optimizer's knobs in one schema; `validate` refuses knobs the chosen optimizer does not have."""

    name: str = "sgd"                  # sgd | gd | momentum | nesterov | adagrad | rmsprop | adam | adamw | anneal
    impl: str = "scratch"              # scratch (sweep.optim) | torch (torch.optim), to compare the two
    momentum: float = 0.0              # sgd, rmsprop
    dampening: float = 0.0             # sgd
    nesterov: bool = False             # sgd
    weight_decay: float = 0.0          # all but anneal (adamw: decoupled)
    maximize: bool = False             # sgd
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam, adamw
    eps: float = 1e-8                  # adam, adamw, rmsprop, adagrad (torch's defaults differ: set in yaml)
    amsgrad: bool = False              # adam, adamw
    alpha: float = 0.99                # rmsprop: smoothing of the squared-gradient average
    centered: bool = False             # rmsprop
    lr_decay: float = 0.0              # adagrad
    initial_accumulator_value: float = 0.0  # adagrad
    temperature: float = 1.0           # anneal: initial temperature T0 (in units of the loss); lr = proposal std
    cooling: float = 0.999             # anneal: T_t = T0 * cooling**t


# Which knobs each optimizer reads; any other knob set away from its default is refused by `validate`.
OPTIMIZER_KNOBS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "dampening", "nesterov", "weight_decay", "maximize"),
    "gd": ("momentum", "dampening", "nesterov", "weight_decay", "maximize"),
    "momentum": ("momentum", "dampening", "nesterov", "weight_decay", "maximize"),
    "nesterov": ("momentum", "dampening", "nesterov", "weight_decay", "maximize"),
    "adagrad": ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
    "rmsprop": ("alpha", "eps", "weight_decay", "momentum", "centered"),
    "adam": ("betas", "eps", "weight_decay", "amsgrad"),
    "adamw": ("betas", "eps", "weight_decay", "amsgrad"),
    "anneal": ("temperature", "cooling"),
}


# --------------------------------------------------------------------------------------------- schedules
@dataclass
class ScheduleConfig:
    """A learning-rate schedule: lr(t) for step t, a pure function (see sweep/schedule.py)."""

    name: str = "constant"   # constant | step | exponential | inverse_time | cosine | warmup_cosine | linear | onecycle
    step_size: int = 100     # step: steps between decays
    gamma: float = 0.1       # step, exponential: decay factor (exponential: per step)
    decay: float = 0.01      # inverse_time: lr0 / (1 + decay * t)
    min_lr: float = 0.0      # cosine, warmup_cosine: final learning rate
    warmup_steps: int = 0    # warmup_cosine: steps of linear warm-up from 0
    pct_start: float = 0.3   # onecycle: fraction of the run spent increasing
    div_factor: float = 25.0         # onecycle: initial lr = lr / div_factor
    final_div_factor: float = 1e4    # onecycle: final lr = initial lr / final_div_factor


SCHEDULES = ("constant", "step", "exponential", "inverse_time", "cosine", "warmup_cosine", "linear", "onecycle")


# --------------------------------------------------------------------------------------------- init, model
@dataclass
class InitConfig:
    """How weights start (see sweep/init.py)."""

    name: str = "lecun_normal"  # lecun_normal | he_normal | xavier_normal | xavier_uniform | orthogonal | normal | zeros
    std: float = 0.01           # normal: the fixed standard deviation
    scale: float = 1.0          # multiplies every initial weight (to show too-large / too-small inits)
    bias: float = 0.0           # every bias starts at this constant


INITS = ("lecun_normal", "he_normal", "xavier_normal", "xavier_uniform", "orthogonal", "normal", "zeros")


@dataclass
class ModelConfig:
    """An MLP: inputs -> hidden layers -> outputs (sizes of inputs/outputs come from the dataset)."""

    hidden: list[int] = field(default_factory=lambda: [64, 64])  # widths of the hidden layers
    activation: str = "relu"                                      # relu | tanh | sigmoid | gelu


ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")


# --------------------------------------------------------------------------------------------- tracking, cluster
@dataclass
class WandbConfig:
    """Weights & Biases. Not part of a run's identity."""

    mode: str = "offline"          # offline (default: compute nodes often have no internet) | online | disabled
    project: str = "sweep"
    entity: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    init_timeout_s: float = 15.0   # online only: give up and fall back to offline after this long


@dataclass
class ClusterConfig:
    """Where a multirun's packs execute (see sweep/launch/). Not part of a run's identity."""

    name: str = "local"                # local | slurm (profiles such as dev set the slurm fields)
    backend: str = "local"             # local | slurm
    workers: int = 1                   # local: packs trained at once (processes)
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    timeout_min: int = 60              # SLURM time limit per array task
    cpus_per_task: int = 1
    mem_gb: Optional[float] = None
    gpus_per_node: int = 0
    constraint: Optional[str] = None
    array_parallelism: int = 64        # array tasks running at once
    max_num_timeout: int = 3           # requeues after a time limit / preemption before giving up
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # extra sbatch flags, e.g. {mail-type: END}
    setup: list[str] = field(default_factory=list)  # shell lines run before each task (module load ..., source venv)
    wait: bool = False                 # slurm: block until every job of the sweep has ended, then summarise


# --------------------------------------------------------------------------------------------- the run
@dataclass
class RunConfig:
    """One training run. Top-level keys are the ones users override most: `sweep run lr=1e-2 epochs=5`."""

    lr: float = 0.1                    # base learning rate (the schedule scales it per step)
    batch_size: Any = 64               # an integer, or "full" for full-batch gradient descent
    epochs: int = 20                   # passes over the training set (with_replacement: N samples each)
    seed: int = 0                      # init and data order; the train/test split is fixed by data.seed
    sampling: str = "shuffle_each_epoch"  # shuffle_each_epoch | shuffle_once | with_replacement
    device: str = "auto"               # auto (cuda when present) | cpu | cuda | cuda:N
    dtype: str = "float32"             # float32 | float64
    diverge_factor: float = 100.0      # a loss above this multiple of the first loss counts as diverged
    log_every: int = 10                # steps between history rows
    checkpoint_every: int = 500        # steps between checkpoints (and one at the end)
    pack: Any = "auto"                 # multirun: models trained together per process, an integer or "auto"
    out_dir: str = "runs"              # results go to out_dir/name/run_id/
    name: Optional[str] = None         # the sweep's name (wandb group); None: "single", or a timestamp in -m
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


SAMPLINGS = ("shuffle_each_epoch", "shuffle_once", "with_replacement")

# Keys that say where/how a run is executed or recorded, not what it computes: excluded from run_id.
NON_SEMANTIC_KEYS = ("name", "out_dir", "wandb", "cluster", "pack", "device", "log_every", "checkpoint_every")


def register_configs() -> None:
    """Register the schema that conf/config.yaml starts from: every group's YAML is merged into a typed node,
    so an unknown key or a wrong type fails at composition, before anything runs."""
    ConfigStore.instance().store(name="run_schema", node=RunConfig)


# --------------------------------------------------------------------------------------------- validation
def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class _Attrs(dict):
    """Read a plain nested dict as c.key.sub (validation runs per grid point: plain dicts are fast)."""

    def __getattr__(self, key: str) -> Any:
        v = self[key]
        return _Attrs(v) if isinstance(v, dict) else v


def validate(cfg: DictConfig | dict) -> None:
    """Raise ConfigError (one line) for the first value a type cannot reject: ranges, choices, knob/optimizer fit."""
    c = _Attrs(OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg)
    bs = c.batch_size
    if not (_positive_int(bs) or bs == "full"):
        raise ConfigError(f"batch_size={bs!r} is invalid: use a positive integer or 'full' (full-batch gradient descent)")
    if not _positive_int(c.epochs):
        raise ConfigError(f"epochs={c.epochs!r} is invalid: use a positive integer")
    if not c.lr > 0:
        raise ConfigError(f"lr={c.lr!r} is invalid: use a positive float, e.g. lr=1e-3")
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
    if not (c.pack == "auto" or _positive_int(c.pack)):
        raise ConfigError(f"pack={c.pack!r} is invalid: use a positive integer or 'auto'")
    _validate_optimizer(c.optimizer)
    if c.optimizer.name == "gd" and bs != "full":
        raise ConfigError(f"optimizer=gd is full-batch gradient descent but batch_size={bs!r}: "
                          "drop batch_size, or use optimizer=sgd for minibatches")
    s = c.schedule
    if s.name not in SCHEDULES:
        raise ConfigError(f"schedule.name={s.name!r} is unknown; choices: {', '.join(SCHEDULES)}")
    if s.name == "step" and not _positive_int(s.step_size):
        raise ConfigError(f"schedule.step_size={s.step_size!r} is invalid: use a positive integer (steps)")
    if s.warmup_steps < 0 or s.min_lr < 0:
        raise ConfigError("schedule.warmup_steps and schedule.min_lr must be >= 0")
    if c.init.name not in INITS:
        raise ConfigError(f"init.name={c.init.name!r} is unknown; choices: {', '.join(INITS)}")
    if c.model.activation not in ACTIVATIONS:
        raise ConfigError(f"model.activation={c.model.activation!r} is unknown; choices: {', '.join(ACTIVATIONS)}")
    if not all(_positive_int(h) for h in c.model.hidden):
        raise ConfigError(f"model.hidden={list(c.model.hidden)!r} is invalid: use a list of positive widths, e.g. [64,64]")
    if c.wandb.mode not in ("offline", "online", "disabled"):
        raise ConfigError(f"wandb.mode={c.wandb.mode!r} is unknown; choices: offline, online, disabled")
    if c.cluster.backend not in ("local", "slurm"):
        raise ConfigError(f"cluster.backend={c.cluster.backend!r} is unknown; choices: local, slurm")


def _validate_optimizer(o: _Attrs) -> None:
    if o.name not in OPTIMIZER_KNOBS:
        raise ConfigError(f"optimizer.name={o.name!r} is unknown; choices: {', '.join(OPTIMIZER_KNOBS)}")
    if o.impl not in ("scratch", "torch"):
        raise ConfigError(f"optimizer.impl={o.impl!r} is unknown; choices: scratch, torch")
    if o.impl == "torch" and o.name == "anneal":
        raise ConfigError("optimizer.impl=torch is not available for anneal (torch.optim has no simulated annealing)")
    knobs = OPTIMIZER_KNOBS[o.name]
    given = o
    for key, default in vars(OptimizerConfig()).items():
        if key in ("name", "impl") or key in knobs:
            continue
        if given[key] != default:
            raise ConfigError(f"optimizer.{key} does not apply to optimizer={o.name}; its knobs: {', '.join(knobs)}")
    if not (0 <= o.momentum < 1 or o.name == "rmsprop" and o.momentum >= 0):
        raise ConfigError(f"optimizer.momentum={o.momentum!r} is invalid: use 0 <= momentum < 1")
    if o.nesterov and (o.momentum <= 0 or o.dampening != 0):
        raise ConfigError("optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise ConfigError(f"optimizer.betas={list(o.betas)!r} is invalid: use two numbers in [0, 1), e.g. [0.9,0.999]")
    if o.eps < 0 or o.weight_decay < 0:
        raise ConfigError("optimizer.eps and optimizer.weight_decay must be >= 0")
    if not 0 <= o.alpha <= 1:
        raise ConfigError(f"optimizer.alpha={o.alpha!r} is invalid: use 0 <= alpha <= 1")
    if o.name == "anneal" and not (o.temperature > 0 and 0 < o.cooling <= 1):
        raise ConfigError("anneal needs optimizer.temperature > 0 and 0 < optimizer.cooling <= 1")


# --------------------------------------------------------------------------------------------- identity
def semantic_config(cfg: DictConfig | dict) -> dict:
    """The part of a resolved config that determines what a run computes."""
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {k: v for k, v in c.items() if k not in NON_SEMANTIC_KEYS and k != "hydra"}


def run_id(cfg: DictConfig | dict) -> str:
    """A short stable hash of the semantic config: the same config gives the same id on any machine."""
    blob = json.dumps(semantic_config(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
