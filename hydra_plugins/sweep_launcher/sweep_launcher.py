"""Hydra plugins `hydra/sweeper=sweep` and `hydra/launcher=sweep`, which hand a whole grid to sweep.launch.

Hydra's sweeper expands the grid (`a=1,2`, `range()`, `choice()`, `glob()`); the launcher receives every job's
overrides at once, so sweep can validate all of them before anything runs or is submitted, then pack them.

The launcher keeps Hydra's contract, so any sweeper plugin (Optuna, Nevergrad, ...) drives it: each job returns
a float (see sweep.compose.objective_value), and the batches a sweeper launches one after another share one sweep
folder. (sweep.app registers both classes itself: an editable install hides hydra_plugins/ from Hydra's scan;
their configs live in sweep.config.)
"""

# No `from __future__ import annotations` here: Hydra's plugin scan executes this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
from collections.abc import Sequence
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sweep.config import register_configs

register_configs()  # the plugins' configs (sweep.config holds them), for a Hydra that found this module by its scan


class SweepSweeper(BasicSweeper):
    """Hydra's basic sweeper without its per-job pre-composition: sweep's launcher validates every grid point
    itself (sharing work between points), and composing each point twice made 1,000-point grids take minutes."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None

    def sweep(self, arguments: list[str]) -> Any:
        """A grid (search=grid) as Hydra's basic sweeper expands it; search=random|tpe: sweep/search.py."""
        assert self.config is not None
        from sweep.compose import check_sweep_overrides

        check_sweep_overrides(arguments)
        if not isinstance(self.launcher, SweepLauncher) and self.config.name is None:
            # another launcher (hydra/launcher=basic, joblib, submitit) runs each job as `sweep run` would run
            # one config, which names it `single`: name the grid here, once, as sweep's launcher would
            from sweep.launch.grid import new_name

            arguments = [*arguments, f"name={new_name()}"]
        if self.config.search.name == "grid":
            returns = super().sweep(arguments)
            # A failed run returns NaN like any run without a result, so a batch never ends the multirun; a
            # grid that is done with failed runs in it (counted on stderr by their batch) exits 1.
            if getattr(getattr(self.launcher, "multirun", None), "failed", 0):
                raise SystemExit(1)
            return returns
        from sweep.search import run_search

        return run_search(self.config, self.launcher, [*self._parse_config(), *arguments])


class SweepLauncher(Launcher):
    """Hydra calls `setup` once per multirun, then `launch` once per batch of jobs."""

    def __init__(self, **_: Any) -> None:
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.multirun: Any = None  # sweep.launch.grid.Multirun: what this multirun's batches share

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from sweep.launch.grid import Multirun

        self.config, self.hydra_context = config, hydra_context
        self.multirun = Multirun()

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from sweep.launch.grid import launch_grid

        assert self.config is not None and self.hydra_context is not None
        return launch_grid(self.hydra_context.config_loader, self.config, job_overrides, self.multirun)
