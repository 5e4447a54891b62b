"""`sweep run`: the Hydra application. One config -> one run; `-m` hands the grid to sweep's launcher."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import hydra
import hydra._internal.utils as hydra_utils
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf, open_dict

from sweep.config import ConfigError, register_configs, validate
from sweep.errors import report_user_errors

Plugins.instance()  # scan first: the scan re-executes Hydra's core plugin modules, redefining BasicSweeper
from hydra_plugins.sweep_launcher.sweep_launcher import SweepLauncher, SweepSweeper  # noqa: E402

register_configs()
for _plugin in (SweepLauncher, SweepSweeper):
    Plugins.instance().register(_plugin)  # an editable install hides hydra_plugins/ from Hydra's scan
# Hydra prints user errors over several lines with a hint about HYDRA_FULL_ERROR; sweep promises one line.
hydra_utils.run_and_report = report_user_errors

SINGLE_RUN_NAME = "single"
T = TypeVar("T")


def resolved(cfg: DictConfig | dict, name: str | None = None, grid_has_custom: bool = False) -> dict:
    """The validated, fully resolved config as a plain dict (what the engine and results store receive)."""
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
    validate(cfg)
    c = dict(cfg)
    if choices is not None:
        c["choices"] = choices
    check_device_here(c)
    c["name"] = c.get("name") or name or SINGLE_RUN_NAME
    return c


def _only_custom_reads_cls(cfg: dict) -> dict:
    """`sweep run -m optimizer=custom,adam optimizer.cls=hw1.MyAdam`: the grid's adam points carry the cls too;
    clear it there (it is custom's knob alone), so it neither is refused nor changes adam's run_id. (Outside
    such a grid, `optimizer=adam optimizer.cls=...` is refused like any knob that does not apply.)"""
    from sweep.config import CUSTOM_ONLY, OptimizerConfig

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


def train_guarded(train: Callable[[], T]) -> T:
    """Call train(); an interruption becomes one line and exit status 130, a user error (a full disk, an
    unwritable out_dir) one line and exit status 2, here rather than through Hydra's job-failure log."""
    from sweep.engine import Interrupted

    try:
        return report_user_errors(train)
    except Interrupted as e:
        print(f"sweep: interrupted: {e}; run the same command again to resume", file=sys.stderr)
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        print(
            "sweep: interrupted at once: runs resume from their last periodic checkpoint when the same command "
            "is run again",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


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


@hydra.main(version_base="1.3", config_path="pkg://sweep.conf", config_name="config")
def run(cfg: DictConfig) -> float | None:
    """Train the one run `cfg` describes (resuming it when a checkpoint exists); returns its final test loss."""
    from sweep.errors import fail, one_line
    from sweep.preflight import check_data
    from sweep.runner import train_runs  # after validation-only paths (--cfg, --help) have returned

    try:
        refuse_cluster_without_multirun(cfg)
        c = resolved(cfg)
        check_data([c])
    except Exception as e:  # a user error exits here, not through Hydra's job-failure logging
        msg = one_line(e)
        if msg is None:
            raise
        fail(msg)
    summary = train_guarded(lambda: train_runs([c], pack=1)[0])
    status = summary.get("status")
    where = shlex.quote(f"{c['out_dir']}/{c['name']}/{summary.get('run_id')}")
    if status == "claimed":
        print(
            f"sweep: run {summary['run_id']} is being trained by {summary.get('claimed_by')}: {where}; "
            "nothing to do here (`sweep status` follows it)"
        )
    elif summary.get("skipped"):
        print(f"sweep: run {summary['run_id']} is already {status}: {where} (delete that folder to train again)")
    else:
        loss, acc = summary.get("final_test_loss"), summary.get("final_test_acc")
        extra = f", test loss {loss:.4g}" if loss is not None else ""
        extra += f", test acc {acc:.3f}" if acc is not None else ""
        print(f"sweep: run {summary.get('run_id')} {status}{extra} -> {where}")
    if status == "failed":
        raise SystemExit(1)
    return summary.get("final_test_loss")
