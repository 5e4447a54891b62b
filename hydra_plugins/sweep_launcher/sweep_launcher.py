"""Hydra plugins `hydra/sweeper=sweep` and `hydra/launcher=sweep`, which hand a whole grid to sweep.launch.

Hydra's sweeper expands the grid (`a=1,2`, `range()`, `choice()`, `glob()`); the launcher receives every job's
overrides at once, so sweep can validate all of them before anything runs or is submitted, then pack them.
(sweep.app registers both classes itself: an editable install hides hydra_plugins/ from Hydra's scan.)
"""

# No `from __future__ import annotations` here: Hydra's plugin scan executes this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SweepLauncherConf:
    _target_: str = "hydra_plugins.sweep_launcher.sweep_launcher.SweepLauncher"


@dataclass
class SweepSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.sweep_launcher.sweep_launcher.SweepSweeper"


ConfigStore.instance().store(group="hydra/launcher", name="sweep", node=SweepLauncherConf, provider="sweep")
ConfigStore.instance().store(group="hydra/sweeper", name="sweep", node=SweepSweeperConf, provider="sweep")


class SweepSweeper(BasicSweeper):
    """Hydra's basic sweeper without its per-job pre-composition: sweep's launcher validates every grid point
    itself (sharing work between points), and composing each point twice made 1,000-point grids take minutes."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None


class SweepLauncher(Launcher):
    def __init__(self, **_: Any) -> None:
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from sweep.launch import launch_grid

        assert self.config is not None and self.hydra_context is not None
        return launch_grid(self.hydra_context.config_loader, self.config, job_overrides)
