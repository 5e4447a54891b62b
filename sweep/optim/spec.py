"""What sweep needs to know about an optimizer, said once: its knobs, its maths, its torch.optim twin.

Each optimizer module (sweep/optim/<name>.py) ends with `SPECS = (OptimizerSpec(...), ...)`; the registry
(sweep/optim/registry.py) collects them, and everything else derives from them: the config schema and its
validation (sweep/config.py), which configs share a pack (sweep/packing.py), and the update the trainer applies
(sweep/updaters.py). Adding an optimizer is one module with its SPECS and one conf/optimizer/<name>.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

# How the trainer moves a pack's weights (sweep/updaters.py):
#   functional: `update` on the stacked [K, ...] tensors, hyperparameters as numbers or K-vectors
#   anneal:     Metropolis steps (no gradient)
#   custom:     a student's class (per-model instances) or update function (functional), named in the config


@dataclass(frozen=True)
class Knob:
    """One setting under `optimizer.` in the config.

    `default` is the schema's value, which means "not set": an optimizer that does not read a knob refuses it set
    to anything else. An optimizer's own default lives in its conf/optimizer/<name>.yaml (torch's, usually).
    """

    name: str
    type: Any
    default: Any
    valid: Callable[[Any], bool] = lambda v: True
    rule: str = ""  # what `valid` accepts, as the error says it: "0 <= momentum < 1"
    # added after run ids were first made: left out of the run_id of optimizers that do not read it, so that
    # their ids (and finished runs) stay the same
    added_later: bool = False


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer as `optimizer=<name>` selects it.

    update_kwargs maps the config's `optimizer` dict to `update`'s keyword arguments. Numbers may differ between
    the models of a pack (they become K-vectors); booleans change the structure of the update, so only configs
    that agree on them share a pack (with the same family: the same `update`).
    """

    name: str
    family: str
    knobs: tuple[Knob, ...]
    updater: str = "functional"
    update: Callable[..., None] | None = None
    init_state: Callable[..., dict[str, Any]] | None = None
    update_kwargs: Callable[[dict], dict[str, Any]] = field(default=lambda o: {})
    # torch.optim's twin (optimizer.impl=torch), built as torch_class(params, lr=lr, **torch_kwargs(o));
    # torch_kwargs defaults to update_kwargs (true where sweep's update takes torch's arguments)
    torch_class: type[torch.optim.Optimizer] | None = None
    torch_kwargs: Callable[[dict], dict[str, Any]] | None = None
    check: Callable[[dict], str | None] = field(default=lambda o: None)  # a rule across knobs: the error, or None
    # can the functional step be captured as a CUDA graph now, given the per-layer states and the pack's update
    # kwargs? None: never (its update reads host state that changes every step). A pack's init_state is called
    # with capturable=True: a step count is then a device tensor (base.step_count), not host state.
    graph_ready: Callable[[list[dict], dict], bool] | None = None

    @property
    def knob_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    def make_torch(self, o: dict, params: list[Tensor], lr: float) -> torch.optim.Optimizer:
        """torch.optim's own optimizer for one model, configured like sweep's update."""
        if self.torch_class is None:
            raise ValueError(f"optimizer {self.name} has no torch.optim twin")
        return self.torch_class(params, lr=lr, **(self.torch_kwargs or self.update_kwargs)(o))

    def structure(self, o: dict) -> dict[str, Any]:
        """The update's structural arguments (booleans): configs of one pack must agree on them."""
        return {k: v for k, v in self.update_kwargs(o).items() if isinstance(v, bool)}


def finite(v: Any) -> bool:
    """A real number that is neither inf nor nan (bools are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: finite(v) and v >= low


def in_range(low: float, high: float, *, high_open: bool = False) -> Callable[[Any], bool]:
    return lambda v: finite(v) and low <= v and (v < high if high_open else v <= high)


def is_bool(v: Any) -> bool:
    return isinstance(v, bool)


# Knobs several optimizers share (same name, same schema default).
WEIGHT_DECAY = Knob("weight_decay", float, 0.0, at_least(0), "weight_decay >= 0")
EPS = Knob("eps", float, 1e-8, at_least(0), "eps >= 0")
MAXIMIZE = Knob("maximize", bool, False, is_bool, "true or false")


def state_on_device(states: list[dict], kwargs: dict) -> bool:
    """`graph_ready` for an optimizer whose whole state (step count included) is made on the device at init."""
    return True
