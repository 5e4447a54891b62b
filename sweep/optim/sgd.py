"""SGD with momentum, dampening, Nesterov, weight decay, maximize — torch.optim.SGD's rule.

g ← ∇L(θ) (negated when maximize) + λθ
b ← μ b + (1 − τ) g          (b ← g on the first step)
θ ← θ − η (g + μ b)  if nesterov  else  θ − η b      (with μ = 0: θ ← θ − η g, no buffer, τ unused)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sweep.optim.base import FunctionalOptimizer, Hyper, is_zero, per_model
from sweep.optim.spec import MAXIMIZE, WEIGHT_DECAY, Knob, OptimizerSpec, in_range, is_bool


def init_state(p: Tensor, **hyper: Any) -> dict[str, Any]:
    return {"momentum_buffer": None}


def update(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: Hyper,
    momentum: Hyper = 0.0,
    dampening: Hyper = 0.0,
    weight_decay: Hyper = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> None:
    g = -grad if maximize else grad
    if not is_zero(weight_decay):
        g = g + per_model(weight_decay, p) * p
    if not is_zero(momentum):
        mu = per_model(momentum, p)
        buf = state["momentum_buffer"]
        if buf is None:
            buf = state["momentum_buffer"] = g.clone()
        else:
            if isinstance(dampening, Tensor):
                buf.mul_(mu).addcmul_(1 - per_model(dampening, p), g)
            else:  # no temporary tensor: the common case, and torch.optim's arithmetic exactly
                buf.mul_(mu).add_(g, alpha=1 - dampening)
        step = g + mu * buf if nesterov else buf
        # a model of the pack with momentum 0 takes the plain step, as torch.optim.SGD(momentum=0) does
        # (its buffer would otherwise carry the dampening factor (1 − τ) from the second step on)
        g = torch.where(mu == 0, g, step) if isinstance(mu, Tensor) else step
    p.addcmul_(per_model(lr, p), g, value=-1) if isinstance(lr, Tensor) else p.add_(g, alpha=-lr)


class SGD(FunctionalOptimizer):
    """Drop-in for torch.optim.SGD (same arguments and defaults)."""

    update = staticmethod(update)
    init_state = staticmethod(init_state)
    hyper_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD needs lr, momentum, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD(nesterov=True) needs momentum > 0 and dampening = 0")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )


def _sgd_kwargs(o: dict) -> dict[str, Any]:
    return {k: o[k] for k in ("momentum", "dampening", "weight_decay", "nesterov", "maximize")}


def _sgd_rule(o: dict) -> str | None:
    if o["nesterov"] and (o["momentum"] <= 0 or o["dampening"] != 0):
        return "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0"
    if o["momentum"] == 0 and o["dampening"] != 0:  # it scales the momentum buffer, which there is none of
        return (
            f"optimizer.dampening={o['dampening']} has no effect without momentum (optimizer.momentum=0): "
            "remove it, or set optimizer.momentum > 0"
        )
    return None


def _graph_ready(states: list[dict], kwargs: dict) -> bool:
    """Capturable once every momentum buffer exists (the first step makes them) or when none is used."""
    return is_zero(kwargs["momentum"]) or all(s["momentum_buffer"] is not None for s in states)


_KNOBS = (
    Knob("momentum", float, 0.0, in_range(0, 1, high_open=True), "0 <= momentum < 1"),
    Knob("dampening", float, 0.0, in_range(0, 1), "0 <= dampening <= 1"),
    Knob("nesterov", bool, False, is_bool, "true or false"),
    WEIGHT_DECAY,
    MAXIMIZE,
)
# gd, momentum and nesterov are sgd with other defaults (conf/optimizer/*.yaml); gd is also full-batch
SPECS = tuple(
    OptimizerSpec(
        name,
        family="sgd",
        knobs=_KNOBS,
        update=update,
        init_state=init_state,
        update_kwargs=_sgd_kwargs,
        torch_class=torch.optim.SGD,
        check=_sgd_rule,
        graph_ready=_graph_ready,
    )
    for name in ("sgd", "gd", "momentum", "nesterov")
)
