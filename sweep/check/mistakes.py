"""Deliberately wrong optimizers, one family at a time: what a likely cause is matched against."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


# ------------------------------------------------------------------------------ deliberately wrong optimizers
# Each faulty_* is torch.optim's maths for one family with its common mistakes as keyword switches (all off: the
# exact torch update, which test_faulty_optimizers_are_torch_without_a_fault_and_differ_with_each holds them to).
# A mistake that is "argument X ignored" needs no switch: faulty_class passes X at its default (Fault.ignores).
def _weight_decay(
    p: Tensor, grad: Tensor, lr: float, weight_decay: float, decoupled: bool, with_lr: bool = True
) -> Tensor:
    """The gradient with weight decay added (coupled: Adam's, SGD's), or p shrunk in place and the gradient as
    it is (decoupled: AdamW's, or that mistake elsewhere; with_lr=False shrinks by weight_decay, not lr * it)."""
    if weight_decay and decoupled:
        p.mul_(1 - (lr if with_lr else 1.0) * weight_decay)
    return grad + weight_decay * p if weight_decay and not decoupled else grad


def faulty_adam(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    betas: Sequence[float],
    eps: float,
    weight_decay: float,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled: bool,
    bias_correction: bool = True,
    correct_m: bool = True,
    correct_v: bool = True,
    v_correction_unsquared: bool = False,
    decay_with_lr: bool = True,
    eps_inside: bool = False,
    eps_before_correction: bool = False,
    t_shift: int = 0,
    **_: Any,
) -> None:
    """Adam/AdamW as students write it, with switchable mistakes; with none it is torch.optim.Adam(W).

    bias_correction=False corrects neither moment, correct_m/correct_v=False one of them;
    v_correction_unsquared divides sqrt(v) by (1 − β2ᵗ) where torch divides it by sqrt(1 − β2ᵗ);
    decay_with_lr=False shrinks decoupled weights by (1 − weight_decay), not (1 − lr · weight_decay);
    t_shift=-1 is t starting at 0 (1 − βᵗ = 0 on the first step: nan), +1 is t counted twice."""
    state["step"] += 1
    t = state["step"] + t_shift
    b1, b2 = betas
    g = _weight_decay(p, -grad if maximize else grad, lr, weight_decay, decoupled, decay_with_lr)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    if amsgrad:
        torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        v = state["max_exp_avg_sq"]
    bc1 = 1 - b1**t if bias_correction and correct_m else 1.0
    bc2 = 1 - b2**t if bias_correction and correct_v else 1.0
    # tensors divided by a float 0.0 give inf/nan (as a student's code does) where floats would raise
    if eps_inside:
        denom = (v / bc2 + eps).sqrt()
    elif eps_before_correction:
        denom = (v.sqrt() + eps) / math.sqrt(bc2)
    elif v_correction_unsquared:
        denom = v.sqrt() / bc2 + eps
    else:
        denom = (v / bc2).sqrt() + eps
    p.sub_(lr * (m / bc1) / denom)


def faulty_sgd(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    decoupled: bool = False,
    decay_sign: float = 1.0,
    ema_momentum: bool = False,
    damp_first: bool = False,
    lookahead_sign: float = 1.0,
    lr_in_buffer: bool = False,
    **_: Any,
) -> None:
    """SGD (momentum, Nesterov) with switchable mistakes; with none it is torch.optim.SGD.

    decay_sign=-1: g − weight_decay · p; ema_momentum: b ← μ b + (1 − μ) g from b = 0 (an average) where torch
    adds g undamped; damp_first: the first buffer is (1 − τ) g (a zero buffer updated) where torch's is g;
    lookahead_sign=-1: Nesterov's step g − μ b where torch's is g + μ b; lr_in_buffer: the buffer collects lr · g
    and p moves by it (the same steps as torch's while lr is constant: it shows when a schedule changes lr)."""
    g = _weight_decay(p, -grad if maximize else grad, lr, decay_sign * weight_decay, decoupled)
    if momentum and lr_in_buffer:
        g, lr = lr * g, 1.0
    if momentum:
        buf = state.get("momentum_buffer")
        if ema_momentum:
            buf = state["momentum_buffer"] = (torch.zeros_like(g) if buf is None else buf).lerp_(g, 1 - momentum)
        elif buf is None:
            buf = state["momentum_buffer"] = g * (1 - dampening) if damp_first else g.clone()
        else:
            buf.mul_(momentum).add_(g, alpha=1 - dampening)
        g = g + lookahead_sign * momentum * buf if nesterov else buf
    p.sub_(lr * g)


def faulty_rmsprop(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
    decoupled: bool = False,
    eps_inside: bool = False,
    alpha_swapped: bool = False,
    momentum_raw: bool = False,
    ema_momentum: bool = False,
    **_: Any,
) -> None:
    """RMSprop with switchable mistakes; with none it is torch.optim.RMSprop.

    alpha_swapped: v ← (1 − α) v + α g²; momentum_raw: the buffer averages g and p moves by lr · b / denom
    (torch averages g / denom); ema_momentum: b ← μ b + (1 − μ) g / denom (torch adds g / denom undamped)."""
    g = _weight_decay(p, -grad if maximize else grad, lr, weight_decay, decoupled)
    v = state.setdefault("square_avg", torch.zeros_like(p))
    a = 1 - alpha if alpha_swapped else alpha
    v.mul_(a).addcmul_(g, g, value=1 - a)
    if centered:
        mean = state.setdefault("grad_avg", torch.zeros_like(p)).lerp_(g, 1 - a)
        v = v - mean * mean
    denom = (v + eps).sqrt() if eps_inside else v.sqrt() + eps
    if momentum:
        buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
        if momentum_raw:
            p.sub_(lr * buf.mul_(momentum).add_(g) / denom)
        else:
            p.sub_(lr * buf.mul_(momentum).add_(g / denom, alpha=1 - momentum if ema_momentum else 1.0))
    else:
        p.sub_(lr * g / denom)


def faulty_adagrad(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
    eps_inside: bool = False,
    decay_t_shift: int = -1,
    **_: Any,
) -> None:
    """Adagrad with switchable mistakes; with none it is torch.optim.Adagrad.

    decay_t_shift: the learning rate is lr / (1 + (t + decay_t_shift) · lr_decay), t = 1 on the first step;
    torch's -1 leaves the first step undecayed, 0 is the usual slip."""
    state["step"] += 1
    g = -grad if maximize else grad
    g = g + weight_decay * p if weight_decay else g
    s = state["sum"].addcmul_(g, g)
    denom = (s + eps).sqrt() if eps_inside else s.sqrt() + eps
    p.sub_(lr / (1 + (state["step"] + decay_t_shift) * lr_decay) * g / denom)


def _faulty_state(p: Tensor, *, initial_accumulator_value: float = 0.0, **_: Any) -> dict[str, Any]:
    """A fresh state with every key any faulty_* update may use (each takes the ones it needs)."""
    zeros = functools.partial(torch.zeros_like, p)
    return {
        "step": 0,
        "exp_avg": zeros(),
        "exp_avg_sq": zeros(),
        "max_exp_avg_sq": zeros(),
        "sum": zeros() + initial_accumulator_value,
    }


@dataclass(frozen=True)
class Fault:
    """A common mistake: what to tell the student, the switches that make the faulty update commit it, and the
    arguments it ignores (faulty_class passes them at torch's default, whatever the check asked for)."""

    cause: str
    switches: dict[str, Any] = field(default_factory=dict)
    applies: Callable[[dict[str, Any]], bool] = lambda kwargs: True  # does it change anything for these kwargs?
    ignores: tuple[str, ...] = ()
    lr_changes_only: bool = False  # the same steps as torch's while lr is constant: only the 'lr changed' check


def _ignored(arg: str, default: Any, cause: str, when: Callable[[dict[str, Any]], bool] | None = None) -> Fault:
    """The mistake of taking `arg` and not using it: it shows only where a check sets it to a non-default value
    (and `when` holds, e.g. dampening only matters with momentum)."""
    return Fault(
        cause,
        applies=lambda kw: kw.get(arg, default) != default and (when is None or when(kw)),
        ignores=(arg,),
    )
