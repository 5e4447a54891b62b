"""Adam and AdamW — torch.optim.Adam / AdamW's rules.

Adam:  g ← ∇L(θ) + λθ          AdamW: θ ← θ(1 − ηλ), g ← ∇L(θ)
m ← β₁ m + (1 − β₁) g;   v ← β₂ v + (1 − β₂) g²;   v̂ ← max(v̂, v) (amsgrad) or v
θ ← θ − η/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sweep.optim.base import FunctionalOptimizer, Hyper, is_zero, per_model, step_count
from sweep.optim.spec import EPS, WEIGHT_DECAY, Knob, OptimizerSpec, finite, is_bool, state_on_device


def init_state(p: Tensor, *, amsgrad: bool = False, capturable: bool = False, **hyper: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "step": step_count(p, capturable),
        "exp_avg": torch.zeros_like(p),
        "exp_avg_sq": torch.zeros_like(p),
    }
    if amsgrad:
        state["max_exp_avg_sq"] = torch.zeros_like(p)
    return state


def update(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: Hyper,
    beta1: Hyper = 0.9,
    beta2: Hyper = 0.999,
    eps: Hyper = 1e-8,
    weight_decay: Hyper = 0.0,
    amsgrad: bool = False,
    decoupled: bool = False,
    maximize: bool = False,
    **_: Any,
) -> None:
    state["step"] += 1
    t = state["step"]
    g = -grad if maximize else grad
    lr, b1, b2 = per_model(lr, p), per_model(beta1, p), per_model(beta2, p)
    if not is_zero(weight_decay):
        if decoupled:
            p.mul_(1 - lr * per_model(weight_decay, p))
        else:
            g = g + per_model(weight_decay, p) * p
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(g, 1 - b1)
    if isinstance(b2, Tensor):
        v.mul_(b2).addcmul_(g, g * (1 - b2))
    else:
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
    if amsgrad:
        torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        v = state["max_exp_avg_sq"]
    # one scratch tensor per step (big layers: temporaries cost as much as the arithmetic)
    denom = v.sqrt().div_((1 - b2**t) ** 0.5).add_(per_model(eps, p))
    step_size = lr / (1 - b1**t)
    if isinstance(step_size, Tensor):
        p.addcmul_(step_size, torch.div(m, denom, out=denom), value=-1)
    else:
        p.addcdiv_(m, denom, value=-step_size)


def _adam_update(p: Tensor, grad: Tensor, state: dict[str, Any], *, betas: Sequence[float], **hyper: Any) -> None:
    update(p, grad, state, beta1=betas[0], beta2=betas[1], **hyper)


class Adam(FunctionalOptimizer):
    """Drop-in for torch.optim.Adam (same arguments and defaults)."""

    update = staticmethod(_adam_update)
    init_state = staticmethod(init_state)
    hyper_names = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled")
    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__} needs lr, eps, weight_decay >= 0 and betas in [0, 1)")
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                decoupled=self._decoupled,
            ),
        )


class AdamW(Adam):
    """Drop-in for torch.optim.AdamW (same arguments and defaults: weight_decay=1e-2, decoupled)."""

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )


def _betas_ok(b: Any) -> bool:
    return isinstance(b, (list, tuple)) and len(b) == 2 and all(finite(x) and 0 <= x < 1 for x in b)


def _adam_kwargs(o: dict) -> dict[str, Any]:
    return {
        "beta1": o["betas"][0],
        "beta2": o["betas"][1],
        "eps": o["eps"],
        "weight_decay": o["weight_decay"],
        "amsgrad": o["amsgrad"],
        "decoupled": o["name"] == "adamw",
    }


def _torch_adam_kwargs(o: dict) -> dict[str, Any]:
    return {"betas": tuple(o["betas"]), "eps": o["eps"], "weight_decay": o["weight_decay"], "amsgrad": o["amsgrad"]}


_KNOBS = (
    Knob("betas", list[float], [0.9, 0.999], _betas_ok, "two numbers in [0, 1), e.g. [0.9,0.999]"),
    EPS,
    WEIGHT_DECAY,
    Knob("amsgrad", bool, False, is_bool, "true or false"),
)
SPECS = tuple(
    OptimizerSpec(
        name,
        family="adam",
        knobs=_KNOBS,
        update=update,
        init_state=init_state,
        update_kwargs=_adam_kwargs,
        torch_class=torch_class,
        graph_ready=state_on_device,
        torch_kwargs=_torch_adam_kwargs,
    )
    for name, torch_class in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW))  # adamw: decoupled decay
)
