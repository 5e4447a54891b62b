"""Hydra launcher plugin `hydra/launcher=sweep` (sweep.app registers it too: editable installs hide it from Hydra's scan): hands a whole multirun grid to sweep.launch.

Hydra's sweeper expands the grid (`a=1,2`, `range()`, `choice()`, `glob()`); this launcher receives every job's
overrides at once, so sweep can validate all of them before anything runs or is submitted, then pack them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SweepLauncherConf:
    _target_: str = "hydra_plugins.sweep_launcher.sweep_launcher.SweepLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="sweep", node=SweepLauncherConf, provider="sweep")


class SweepLauncher(Launcher):
    def __init__(self, **_: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from sweep.launch import launch_grid

        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        return launch_grid(lambda ov: loader.load_sweep_config(self.config, list(ov)), job_overrides)
