"""From Hydra's composed config to validated run configs (plain dicts): one run (`single_run`) or a grid
(`grid_composer` + `compose_grid`). The one path both `sweep run` and `sweep run -m` take, so both refuse the
same inputs with the same line: static checks (sweep.config.validate), then the ones that need this machine
(`check_device_here`) or the data (sweep.preflight).

Importing this module registers sweep's schema and its plugins' configs, so that Hydra's compose API (tests,
notebooks, benchmarks) composes exactly what `sweep run` composes. It sits below sweep.app (the entry point,
which registers the plugins' classes) and sweep.launch, and imports neither.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue

from sweep.config import CUSTOM_ONLY, OptimizerConfig, RunConfig, register_configs, validate
from sweep.errors import ConfigError, reworded
from sweep.optim import custom as custom_optimizer

register_configs()

SINGLE_RUN_NAME = "single"
NOTHING_RAN = "; nothing was run or submitted"
_ABSENT = object()


def check_sweep_overrides(arguments: Sequence[str]) -> None:
    """Refuse, in one line, a comma list that holds a sweep (`seed=range(0,3),7`): Hydra's sweeper fails on it
    with an error about `Set[str]` and `tags` that says nothing of the override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep, Sweep

    for o in OverridesParser.create().parse_overrides(list(arguments)):
        value = o.value() if o.is_sweep_override() else None
        if isinstance(value, ChoiceSweep) and any(isinstance(v, Sweep) for v in value.list):
            key, flat = o.get_key_element(), []
            for v in value.list:
                if isinstance(v, RangeSweep) and v.stop is not None:
                    flat += [str(x) for x in _frange(v.start, v.stop, v.step)]
                elif not isinstance(v, Sweep):
                    flat.append(str(v))
                else:
                    flat = []
                    break
            fix = f"write its values as one list: {key}={','.join(flat)}" if flat else "write its values as one list"
            raise ConfigError(f"{o.input_line}: a comma list cannot hold range(), choice() or interval(); {fix}")


def _frange(start: float, stop: float, step: float) -> list[float | int]:
    """The values Hydra's range(start, stop, step) sweeps over (ints where all three are ints)."""
    out, x = [], start
    while (step > 0 and x < stop) or (step < 0 and x > stop):
        out.append(x)
        x += step
    return out


# ---------------------------------------------------------------------------------------------- one config
def resolved(cfg: DictConfig | dict, name: str | None = None, grid_has_custom: bool = False) -> dict:
    """The validated, fully resolved config as a plain dict (what the engine and results store receive).
    Raises ConfigError (one line) for a value it refuses; the data checks are `check_data`'s."""
    choices = None
    if isinstance(cfg, DictConfig):
        if "hydra" in cfg:
            choices = group_choices(cfg.hydra)
            cfg = cfg.copy()
            with open_dict(cfg):
                cfg.pop("hydra")  # Hydra's own node (in -m it is only half-filled); not part of a run
        elif HydraConfig.initialized():
            choices = group_choices(HydraConfig.get())
        cfg = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    if grid_has_custom:
        cfg = _only_custom_reads_cls(cfg)
    _refuse_removed_keys(cfg, _schema())
    validate(cfg)
    c = custom_optimizer.with_code(dict(cfg))
    if choices is not None:
        c["choices"] = choices
    check_device_here(c)
    c["name"] = c.get("name") or name or SINGLE_RUN_NAME
    return c


def single_run(cfg: DictConfig) -> dict:
    """`sweep run` without -m: the one run `cfg` describes, validated (ConfigError / DataError otherwise)."""
    from sweep.preflight import check_data  # loads the data (torch): after --cfg and --help have returned

    refuse_cluster_without_multirun(cfg)
    c = resolved(cfg)
    check_data([c])
    return c


@functools.cache
def _schema() -> dict:
    """RunConfig's defaults as a plain dict: every key a run reads."""
    return OmegaConf.to_container(OmegaConf.structured(RunConfig))


def _refuse_removed_keys(cfg: dict, schema: dict, where: str = "") -> None:
    """Refuse (ConfigError) a config without a key of the schema: Hydra's `~lr` removes a key every run reads."""
    for key, default in schema.items():
        if key not in cfg:
            raise ConfigError(f"{where}{key} is missing (removed with ~{where}{key}?): every run needs it; set a value")
        if isinstance(default, dict) and isinstance(cfg[key], dict):
            _refuse_removed_keys(cfg[key], default, f"{where}{key}.")


def _only_custom_reads_cls(cfg: dict) -> dict:
    """`sweep run -m optimizer=custom,adam optimizer.cls=hw1.MyAdam`: the grid's adam points carry the cls too;
    clear it there (it is custom's knob alone), so it neither is refused nor changes adam's run_id. (Outside
    such a grid, `optimizer=adam optimizer.cls=...` is refused like any knob that does not apply.)"""
    o = cfg.get("optimizer") or {}
    if o.get("name") != "custom" and any(o.get(k) for k in CUSTOM_ONLY):
        defaults = vars(OptimizerConfig())
        cfg = dict(cfg, optimizer=dict(o, **{k: defaults[k] for k in CUSTOM_ONLY}))
    return cfg


def group_choices(hydra_node: Any) -> dict[str, str]:
    """The option chosen in each of sweep's config groups (optimizer: adam_lowbeta, ...): two presets with the
    same `optimizer.name` are different configs, and analysis must be able to tell them apart."""
    try:
        chosen = OmegaConf.to_container(hydra_node.runtime.choices, resolve=True)
    except Exception:  # a node without runtime choices (an older Hydra, a hand-made config)
        return {}
    return {
        str(k): str(v)
        for k, v in sorted(chosen.items())
        if not str(k).startswith("hydra") and v is not None and str(k) != "cluster"
    }


def check_device_here(c: dict) -> None:
    """Refuse (ConfigError) device=cuda[:N] where the run would train on this machine and it has no such GPU.

    Not for cluster.backend=slurm: the submitting (login) machine often has no GPU; the compute node decides.
    torch is imported only for a cuda device, so validation-only paths stay torch-free."""
    device = str(c.get("device", "auto"))
    if not device.startswith("cuda") or c.get("cluster", {}).get("backend") == "slurm":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device={device} but torch.cuda.is_available() is False here: use device=auto or cpu")
    index = device.partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device} but this machine has {torch.cuda.device_count()} GPU(s) "
            f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1}): use device=auto, cuda or cuda:N "
            "with a smaller N"
        )


def refuse_cluster_without_multirun(cfg: DictConfig) -> None:
    """A single run (no -m) trains here, in this process: with a SLURM cluster profile that would mean training
    on the login node with no word. Refuse (ConfigError) and say how to submit instead."""
    cluster = cfg.get("cluster")
    if cluster is not None and cluster.get("backend") == "slurm":
        name = cluster.get("name") or "slurm"
        raise ConfigError(
            f"cluster={name} submits sweeps: add -m (`sweep run -m cluster={name} ...`; "
            "a single config is an array of one)"
        )


def objective_value(cfg: dict, summary: dict) -> float:
    """What Hydra's sweeper receives for one run of a multirun, always a float: the summary's `objective`
    value for a run that ended `done` with a finite one; `objective_if_failed` for a diverged or collapsed run
    (or a done run without a finite value); NaN for a run without a result: failed (an error), or not trained
    yet (queued on SLURM without cluster.wait, trained by another process). Sweepers such as Optuna record NaN
    as a failed trial."""
    status = summary.get("status")
    if status in ("diverged", "collapsed"):
        return float(cfg["objective_if_failed"])
    if status != "done":
        return math.nan
    value = summary.get(cfg["objective"])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return float(cfg["objective_if_failed"])


# ---------------------------------------------------------------------------------------------- a grid
def grid_composer(loader: Any, config: DictConfig) -> Callable[[Sequence[str]], dict]:
    """compose(overrides) -> the plain config of one grid point, as Hydra composes it; composes each distinct
    choice of config groups once.

    Hydra composes a config from scratch per point (~85 ms here); grid points usually differ only in values
    (lr, seed, ...), which are applied to a copy of the composed groups exactly as Hydra applies overrides (its
    private ConfigLoaderImpl._apply_overrides_to_config). That fast path is only ever a shortcut: a point it
    cannot compose is composed again Hydra's public way, so a bad point fails with Hydra's own error and the fix
    it offers (`use +cluster.additional_parameters.hold=1`), never with what the shortcut tripped on."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    apply_values = getattr(ConfigLoaderImpl, "_apply_overrides_to_config", None)  # private: may go away
    parser = OverridesParser.create(config_loader=loader)
    composed: dict[tuple[str, ...], DictConfig] = {}
    parsed_lines: dict[str, Any] = {}  # grids repeat the same override strings: parse each once
    group_keys: dict[str, bool] = {}

    def is_structural(o: Any) -> bool:
        key = o.key_or_group
        if key not in group_keys:
            group_keys[key] = key.startswith("hydra") or loader.repository.group_exists(key)
        return group_keys[key] or o.is_add() or o.is_delete()

    def parse(line: str) -> Any:
        if line not in parsed_lines:
            parsed_lines[line] = parser.parse_overrides([line])[0]
        return parsed_lines[line]

    def plain_part(cfg: DictConfig) -> DictConfig:
        picked = group_choices(cfg.hydra)
        with open_dict(cfg):
            cfg.pop("hydra")  # Hydra's own node is most of the config and no part of a run
            cfg["choices"] = picked
        return cfg

    def composed_by_hydra(overrides: Sequence[str]) -> dict:
        cfg = plain_part(loader.load_sweep_config(config, list(overrides)))
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)

    def compose(overrides: Sequence[str]) -> dict:
        parsed = [parse(line) for line in overrides]
        structural = tuple(o.input_line for o in parsed if is_structural(o))
        if apply_values is None:
            return composed_by_hydra(overrides)
        if structural not in composed:
            composed[structural] = plain_part(loader.load_sweep_config(config, list(structural)))
        cfg = composed[structural]
        values = [o for o in parsed if not is_structural(o)]
        # Apply the value overrides in place (type-checked by the schema, as Hydra does), read the result,
        # and put the old values back: a deep copy of the config per point cost more than all the rest.
        saved = [(o.key_or_group, _current(cfg, o.key_or_group)) for o in values]
        try:
            apply_values(values, cfg)
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except Exception:
            del composed[structural]  # half-applied: compose it afresh for the next point
            return composed_by_hydra(overrides)
        finally:
            if structural in composed:
                for key, old in saved:
                    if old is not _ABSENT:
                        OmegaConf.update(cfg, key, old, merge=False)

    return compose


def _current(cfg: DictConfig, key: str) -> Any:
    """The value at `key` as a plain value to put back later: `???` for a missing one, _ABSENT for no such key."""
    try:
        v = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    except MissingMandatoryValue:
        return "???"
    return OmegaConf.to_container(v) if isinstance(v, (DictConfig, ListConfig)) else v


def compose_grid(compose: Callable[[Sequence[str]], dict], job_overrides: Sequence[Sequence[str]]) -> list[dict]:
    """Resolve and validate every grid point, then check the data of them all; the first bad point raises
    ConfigError naming it (nothing has been written or submitted then)."""
    from sweep.preflight import check_data

    has_custom = any(
        o.lstrip("+").replace(" ", "") in ("optimizer=custom", "optimizer.name=custom")
        for ov in job_overrides
        for o in ov
    )
    cfgs = []
    for ov in job_overrides:
        with reworded(prefix=f"grid point [{' '.join(ov)}]: ", suffix=NOTHING_RAN):
            cfgs.append(resolved(compose(ov), name="?", grid_has_custom=has_custom))
    with reworded(suffix=NOTHING_RAN):
        check_data(cfgs)
    return cfgs
