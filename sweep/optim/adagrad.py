"""AdaGrad — torch.optim.Adagrad's rule.

g ← ∇L(θ) + λθ;   s ← s + g²;   θ ← θ − η / (1 + (t − 1)·decay) · g / (√s + ε)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sweep.optim.base import FunctionalOptimizer, Hyper, is_zero, per_model, step_count
from sweep.optim.spec import EPS, WEIGHT_DECAY, Knob, OptimizerSpec, at_least, state_on_device


def init_state(
    p: Tensor, *, initial_accumulator_value: Hyper = 0.0, capturable: bool = False, **hyper: Any
) -> dict[str, Any]:
    return {"step": step_count(p, capturable), "sum": torch.zeros_like(p) + per_model(initial_accumulator_value, p)}


def update(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: Hyper,
    lr_decay: Hyper = 0.0,
    weight_decay: Hyper = 0.0,
    eps: Hyper = 1e-10,
    maximize: bool = False,
    **_: Any,
) -> None:
    state["step"] += 1
    g = -grad if maximize else grad
    if not is_zero(weight_decay):
        g = g + per_model(weight_decay, p) * p
    clr = per_model(lr, p) / (1 + (state["step"] - 1) * per_model(lr_decay, p))
    state["sum"].addcmul_(g, g)
    p.sub_(clr * g / (state["sum"].sqrt() + per_model(eps, p)))


class Adagrad(FunctionalOptimizer):
    """Drop-in for torch.optim.Adagrad (same arguments and defaults)."""

    update = staticmethod(update)
    init_state = staticmethod(init_state)
    hyper_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        if min(lr, lr_decay, weight_decay, initial_accumulator_value, eps) < 0:
            raise ValueError("Adagrad needs lr, lr_decay, weight_decay, initial_accumulator_value, eps >= 0")
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
                maximize=maximize,
            ),
        )


def _adagrad_kwargs(o: dict) -> dict[str, Any]:
    return {k: o[k] for k in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")}


SPECS = (
    OptimizerSpec(
        "adagrad",
        family="adagrad",
        knobs=(
            # lr_decay < 0 would make the rate grow with t (torch.optim.Adagrad refuses it too)
            Knob("lr_decay", float, 0.0, at_least(0), "lr_decay >= 0"),
            WEIGHT_DECAY,
            # the accumulator is a sum of squares: its square root must exist
            Knob("initial_accumulator_value", float, 0.0, at_least(0), "initial_accumulator_value >= 0"),
            EPS,
        ),
        update=update,
        init_state=init_state,
        update_kwargs=_adagrad_kwargs,
        torch_class=torch.optim.Adagrad,
        graph_ready=state_on_device,
    ),
)
