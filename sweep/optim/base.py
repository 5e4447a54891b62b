"""What every optimizer here shares: broadcasting of K-vector hyperparameters, and the torch.optim wrapper.

Each optimizer's maths is written once, as `update(param, grad, state, **hyper)` on one tensor. A hyperparameter
is a Python number, or a K-vector tensor when `param` stacks K models along its leading axis (a pack trained
by sweep.engine). The `torch.optim.Optimizer` classes students use call the same `update` with numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import torch
from torch import Tensor

Hyper = Union[float, Tensor]


def per_model(h: Hyper, p: Tensor) -> Hyper:
    """View a K-vector hyperparameter as [K, 1, ..., 1] so it broadcasts over a stacked parameter."""
    if isinstance(h, Tensor) and h.ndim == 1 and p.ndim > 1:
        return h.view(-1, *([1] * (p.ndim - 1)))
    return h


def step_count(p: Tensor, on_device: bool) -> int | Tensor:
    """A new optimizer state's step count t = 0: a Python int (torch.optim's default), or, `on_device`, a 0-dim
    float64 tensor on p's device that `update` advances in place (`+= 1`), as torch.optim's capturable=True
    does. A pack keeps it on the device so its step has no host state: a CUDA graph replays it. On the CPU both
    give the same bits (a 0-dim CPU tensor enters the arithmetic as a scalar, as a Python number does)."""
    return torch.zeros((), dtype=torch.float64, device=p.device) if on_device else 0


def is_zero(h: Hyper) -> bool:
    """True when a hyperparameter is the number 0 (a tensor never is: its entries may differ per model)."""
    return not isinstance(h, Tensor) and h == 0


class FunctionalOptimizer(torch.optim.Optimizer):
    """A `torch.optim.Optimizer` whose `step` applies `self.update` to every parameter that has a gradient.

    Subclasses set `update` (the maths) and `init_state` (the per-parameter state on first use), and pass
    torch's defaults to `__init__`. Parameters without a gradient are skipped and their state is untouched,
    exactly as torch.optim does.
    """

    update: Callable[..., None]
    init_state: Callable[..., dict[str, Any]]
    hyper_names: tuple[str, ...] = ()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = {name: group[name] for name in self.hyper_names}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(type(self).init_state(p, **hyper))
                type(self).update(p, p.grad, state, **hyper)
        return loss
