"""A Hydra sweeper for tests, `hydra/sweeper=two_batches`: it launches its grid in two batches, as adaptive
sweepers (Optuna, Nevergrad) launch theirs one after another, and writes what the launcher returned for each
job to the JSON file `hydra.sweeper.out`. Found by Hydra's plugin scan when tests/plugins is on PYTHONPATH."""

# No `from __future__ import annotations`: Hydra's plugin scan executes this module before it is in sys.modules.
import json
from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper


@dataclass
class TwoBatchesConf:
    _target_: str = "hydra_plugins.two_batch_sweeper.TwoBatchSweeper"
    out: str = "returned.json"


ConfigStore.instance().store(group="hydra/sweeper", name="two_batches", node=TwoBatchesConf, provider="tests")


class TwoBatchSweeper(Sweeper):
    def __init__(self, out: str) -> None:
        self.out = out
        self.launcher: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        grid = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)[0]
        half = (len(grid) + 1) // 2
        returned = []
        for batch in (grid[:half], grid[half:]):
            for r in self.launcher.launch(batch, initial_job_idx=len(returned)):
                value = r.return_value
                returned.append({"overrides": list(r.overrides), "type": type(value).__name__, "value": value})
        with open(self.out, "w") as f:
            json.dump(returned, f)
        return returned
