"""RMSprop (optionally centred, with momentum) — torch.optim.RMSprop's rule.

g ← ∇L(θ) + λθ;   v ← α v + (1 − α) g²;   m̄ ← α m̄ + (1 − α) g  (centred only)
d ← √(v − m̄²) + ε  (centred)  or  √v + ε
b ← μ b + g / d;  θ ← θ − η b      (with μ = 0: θ ← θ − η g / d)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sweep.optim.base import FunctionalOptimizer, Hyper, is_zero, per_model, step_count
from sweep.optim.spec import EPS, WEIGHT_DECAY, Knob, OptimizerSpec, at_least, in_range, is_bool, state_on_device


def init_state(
    p: Tensor, *, momentum: Hyper = 0.0, centered: bool = False, capturable: bool = False, **hyper: Any
) -> dict[str, Any]:
    state: dict[str, Any] = {"step": step_count(p, capturable), "square_avg": torch.zeros_like(p)}
    if not is_zero(momentum):
        state["momentum_buffer"] = torch.zeros_like(p)
    if centered:
        state["grad_avg"] = torch.zeros_like(p)
    return state


def update(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: Hyper,
    alpha: Hyper = 0.99,
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0.0,
    momentum: Hyper = 0.0,
    centered: bool = False,
    maximize: bool = False,
    **_: Any,
) -> None:
    state["step"] += 1
    g = -grad if maximize else grad
    if not is_zero(weight_decay):
        g = g + per_model(weight_decay, p) * p
    a = per_model(alpha, p)
    v = state["square_avg"]
    v.mul_(a).add_((1 - a) * g * g)
    if centered:
        m = state["grad_avg"]
        m.lerp_(g, 1 - a)
        denom = (v - m * m).sqrt_()
    else:
        denom = v.sqrt()
    denom.add_(per_model(eps, p))
    if not is_zero(momentum):
        buf = state["momentum_buffer"]
        buf.mul_(per_model(momentum, p)).add_(g / denom)
        p.sub_(per_model(lr, p) * buf)
    else:
        p.sub_(per_model(lr, p) * g / denom)


class RMSprop(FunctionalOptimizer):
    """Drop-in for torch.optim.RMSprop (same arguments and defaults)."""

    update = staticmethod(update)
    init_state = staticmethod(init_state)
    hyper_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if min(lr, alpha, eps, weight_decay, momentum) < 0:
            raise ValueError("RMSprop needs lr, alpha, eps, weight_decay, momentum >= 0")
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
                maximize=maximize,
            ),
        )


def _rmsprop_kwargs(o: dict) -> dict[str, Any]:
    return {k: o[k] for k in ("alpha", "eps", "weight_decay", "momentum", "centered")}


SPECS = (
    OptimizerSpec(
        "rmsprop",
        family="rmsprop",
        knobs=(
            Knob("alpha", float, 0.99, in_range(0, 1), "0 <= alpha <= 1"),
            EPS,
            WEIGHT_DECAY,
            Knob("momentum", float, 0.0, at_least(0), "momentum >= 0"),  # torch.optim.RMSprop allows >= 1
            Knob("centered", bool, False, is_bool, "true or false"),
        ),
        update=update,
        init_state=init_state,
        update_kwargs=_rmsprop_kwargs,
        torch_class=torch.optim.RMSprop,
        graph_ready=state_on_device,
    ),
)
