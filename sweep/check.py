"""`sweep check MODULE.CLS --like adam`: is a student's optimizer a drop-in for torch.optim's?

The student's class and the references (torch.optim's class, and sweep.optim's from-scratch one) train copies of
one small float64 MLP from the same initialisation on the same minibatches, for a handful of hyperparameter
cases per `--like`, across a state_dict save/load mid-way, with the lr changed mid-way (as a schedule does), and
with one layer that has no gradient on odd steps.
Each check passes when every parameter after every step is within RTOL (relative) of torch.optim's. A failing
check names the first step and parameter where the trajectories part, and a likely cause: the first of the
deliberately wrong optimizers of that family (Adam without bias correction, AdamW's decay without lr, SGD's
dampening on the first step, RMSprop's alpha swapped, an argument such as maximize ignored, ...) that follows
the student's trajectory over its first steps. The cases set every argument of torch's class that changes the
maths to a non-default value somewhere; a class that lacks one is graded on the rest, that check SKIPPED.

Exit status: 0 every check passed, 1 some failed, 2 bad input (one line on stderr, sweep.errors.fail).
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import torch
from torch import Tensor, nn

import sweep.optim as so
from sweep.deadline import StepTimeout, time_limit
from sweep.errors import described, fail
from sweep.optim.base import FunctionalOptimizer
from sweep.optim.custom import import_student_module

STEPS, RESUME_AT = 150, 75
LR_CHANGE = 0.5  # the 'lr changed' check multiplies every group's lr by this at step RESUME_AT, as a schedule does
RTOL = 1e-6
CHECK_TIMEOUT_S = 60.0  # 150 steps of a 500-parameter MLP take well under a second: longer is a hang
# a variant "follows" the student when it matches the student over this many steps from the start
CAUSE_WINDOW = 10
N, D_IN, HIDDEN, CLASSES, BATCH = 96, 12, 16, 4, 32

Trajectory = list[list[Tensor]]


# ------------------------------------------------------------------------------------------ the training problem
class MLP(nn.Module):
    """tanh MLP with an extra residual layer that the 'no gradient' check leaves out on odd steps."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D_IN, HIDDEN), nn.Tanh())
        self.extra = nn.Linear(HIDDEN, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: Tensor, use_extra: bool = True) -> Tensor:
        h = self.body(x)
        if use_extra:
            h = h + torch.tanh(self.extra(h))
        return self.head(h)


@functools.cache
def problem() -> tuple[MLP, Tensor, Tensor, list[Tensor]]:
    """(initial network, inputs, labels, one index batch per step): fixed seeds, float64, the same every call."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    w = torch.randn(D_IN, CLASSES, generator=g, dtype=torch.float64)
    y = (x @ w + 0.5 * torch.randn(N, CLASSES, generator=g, dtype=torch.float64)).argmax(1)
    batches = [torch.randperm(N, generator=g)[:BATCH] for _ in range(STEPS)]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = MLP().double()
    return net, x, y, batches


PARAM_NAMES = [n for n, _ in MLP().named_parameters()]


@dataclass
class Run:
    """One optimizer's trajectory: parameters and loss after each step, up to the step where it blew up.

    `blew_up` is the 0-based step at which the optimizer raised or a parameter became non-finite (that step's
    parameters are not in `params`), or None; `error` says how."""

    params: Trajectory = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    blew_up: int | None = None
    error: str = ""


def train(
    make: Callable[[Any], torch.optim.Optimizer],
    *,
    resume: bool = False,
    sometimes: bool = False,
    lr_change: bool = False,
    steps: int = STEPS,
) -> Run:
    """Train a fresh copy of the problem's MLP for `steps` (at most STEPS) steps with `make(params)`.

    resume: at step RESUME_AT save the optimizer's state_dict, build a fresh optimizer on fresh parameter tensors
    (same values), load the state and go on. sometimes: the `extra` layer is left out of the loss on odd steps,
    so its .grad is None there (zero_grad sets gradients to None). lr_change: at step RESUME_AT every param
    group's lr is multiplied by LR_CHANGE, as a learning-rate schedule does between steps."""
    net0, x, y, batches = problem()
    net = copy.deepcopy(net0)
    run = Run()
    try:
        opt = make(net.parameters())
        for t in range(min(steps, STEPS)):
            if resume and t == RESUME_AT:
                buf = io.BytesIO()
                torch.save(opt.state_dict(), buf)
                net = copy.deepcopy(net)
                opt = make(net.parameters())
                buf.seek(0)
                # weights_only=False: a student's state may hold any Python object, and we wrote it ourselves
                opt.load_state_dict(torch.load(buf, weights_only=False))
            if lr_change and t == RESUME_AT:
                for group in opt.param_groups:
                    group["lr"] *= LR_CHANGE
            opt.zero_grad()
            idx = batches[t]
            loss = nn.functional.cross_entropy(net(x[idx], use_extra=not sometimes or t % 2 == 0), y[idx])
            loss.backward()
            opt.step()
            params = [p.detach().clone() for p in net.parameters()]
            bad = [n for n, p in zip(PARAM_NAMES, params) if not bool(torch.isfinite(p).all())]
            if bad:
                run.blew_up, run.error = t, f"parameter {bad[0]} became nan or inf"
                return run
            run.params.append(params)
            run.losses.append(loss.item())
    except StepTimeout:
        raise  # a hang ends the whole check (every other check would wait as long)
    except (Exception, SystemExit) as e:  # the student's code raised (or called sys.exit): the check's finding
        run.blew_up = len(run.params)
        run.error = _raised(e)
    return run


def _raised(e: BaseException) -> str:
    """What the student's code did, as a finding: `raised ValueError: ...`, or `called sys.exit(0)` (which would
    otherwise end `sweep check` itself with that status and no report)."""
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r})"
    return f"raised {described(e)}".rstrip(": ")


def rel_diff(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise |a − b| / (|b| + 1e-8), b the reference (the floor keeps near-zero entries meaningful)."""
    return (a - b).abs() / (b.abs() + 1e-8)


@dataclass
class Comparison:
    """How a run differs from a reference run: the worst relative difference over every step and parameter, and
    the first (step, parameter name, difference) beyond RTOL (difference inf where the run blew up), or None."""

    worst: float
    first: tuple[int, str, float] | None


def compare(run: Run, ref: Run, steps: int = STEPS) -> Comparison:
    """Compare the first `steps` steps of `run` with `ref`; a blow-up is a difference of inf at its step."""
    worst, first = 0.0, None
    for t in range(steps):
        if t >= len(run.params) or t >= len(ref.params):
            if run.blew_up == t and ref.blew_up == t:
                return Comparison(worst, first)  # both blew up at the same step: the same so far
            return Comparison(math.inf, first or (t, "(blew up)", math.inf))
        for name, a, b in zip(PARAM_NAMES, run.params[t], ref.params[t]):
            d = float(rel_diff(a, b).max())
            worst = max(worst, d)
            if first is None and d > RTOL:
                first = (t, name, d)
    return Comparison(worst, first)


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


# --------------------------------------------------------------------------------------------- what to check
@dataclass(frozen=True)
class Like:
    """One `--like` choice: the references, the faulty maths, the fixed arguments and the cases to check.

    Every case's kwargs (fixed | case) go to the student's class, torch.optim's and sweep.optim's alike: the
    student's class is checked as a drop-in for torch's with those arguments. Between them the cases set every
    argument of torch's class that changes the maths to a non-default value (the implementation switches
    foreach, fused, capturable and differentiable aside), so that a class ignoring one fails that case."""

    torch_cls: type[torch.optim.Optimizer]
    sweep_cls: type[torch.optim.Optimizer]
    faulty: Callable[..., None]
    fixed: dict[str, Any]
    cases: list[dict[str, Any]]
    faults: list[Fault]
    decoupled: bool = False


def _wd(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("weight_decay", 0))


def _momentum(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("momentum", 0))


def _maximize_ignored(name: str) -> Fault:
    return _ignored(
        "maximize",
        False,
        f"maximize=True ignored: {name} then steps up the gradient; negate it (g = -p.grad) before everything "
        "else, weight decay included",
    )


_SGD_FAULTS = [
    Fault(
        "weight decay with the wrong sign: torch.optim.SGD adds it to the gradient, g = g + weight_decay * p",
        dict(decay_sign=-1.0),
        _wd,
    ),
    _maximize_ignored("SGD"),
]
_MOMENTUM_FAULTS = [
    *_SGD_FAULTS,
    Fault(
        "momentum as an average, b = mu*b + (1-mu)*g: torch.optim.SGD adds g undamped, b = mu*b + g",
        dict(ema_momentum=True),
        _momentum,
    ),
    Fault(
        "weight decay applied to the weights (decoupled): torch.optim.SGD adds it to the gradient, "
        "g = g + weight_decay * p",
        dict(decoupled=True),
        lambda kw: _wd(kw) and _momentum(kw),
    ),  # without momentum the two are the same step
    _ignored(
        "dampening",
        0.0,
        "dampening ignored: from the second step on the buffer is b = momentum*b + (1 - dampening)*g",
        _momentum,
    ),
    Fault(
        "dampening applied on the first step (or the buffer started at zero): torch.optim.SGD starts the buffer "
        "at the first gradient as it is, b = g, and damps only the later steps",
        dict(damp_first=True),
        lambda kw: _momentum(kw) and bool(kw.get("dampening", 0)),
    ),
    Fault(
        "lr applied inside the momentum buffer (b = mu*b + lr*g): torch.optim.SGD keeps lr out of it, "
        "b = mu*b + g and p -= lr*b, so a schedule's new lr applies at once",
        dict(lr_in_buffer=True),
        _momentum,
        lr_changes_only=True,
    ),
]
_NESTEROV_FAULTS = [
    *_MOMENTUM_FAULTS,
    _ignored(
        "nesterov",
        False,
        "nesterov=True ignored (the plain momentum step p -= lr*b): Nesterov steps by p -= lr*(g + momentum*b)",
        _momentum,
    ),
    Fault(
        "Nesterov's look-ahead with the wrong sign: the step is p -= lr*(g + momentum*b), not g - momentum*b",
        dict(lookahead_sign=-1.0),
        _momentum,
    ),
]
_ADAGRAD_FAULTS = [
    Fault("eps inside the square root: use sqrt(sum) + eps", dict(eps_inside=True)),
    _ignored("lr_decay", 0.0, "lr_decay ignored: step t uses lr / (1 + (t - 1) * lr_decay), t = 1 on the first"),
    Fault(
        "lr_decay one step early: step t uses lr / (1 + (t - 1) * lr_decay), so the first step (t = 1) is not decayed",
        dict(decay_t_shift=0),
        lambda kw: bool(kw.get("lr_decay", 0)),
    ),
    _ignored(
        "initial_accumulator_value",
        0.0,
        "initial_accumulator_value ignored: the sum of squared gradients starts at it, not at 0",
    ),
    _maximize_ignored("Adagrad"),
]
_RMSPROP_FAULTS = [
    Fault("eps inside the square root: use sqrt(v) + eps", dict(eps_inside=True)),
    Fault(
        "weight decay applied to the weights (decoupled): torch.optim.RMSprop adds it to the "
        "gradient, g = g + weight_decay * p",
        dict(decoupled=True),
        _wd,
    ),
    Fault(
        "alpha swapped: the average of squares is v = alpha*v + (1 - alpha)*g**2 (alpha is the weight of the past)",
        dict(alpha_swapped=True),
    ),
    _ignored(
        "centered",
        False,
        "centered=True ignored (the variance without the mean): keep the average gradient mean = alpha*mean + "
        "(1 - alpha)*g and divide by sqrt(v - mean**2) + eps",
    ),
    Fault(
        "momentum on the raw gradient: torch.optim.RMSprop's buffer collects the normalised step, "
        "b = momentum*b + g / (sqrt(v) + eps), and p -= lr*b",
        dict(momentum_raw=True),
        _momentum,
    ),
    Fault(
        "momentum as an average, b = mu*b + (1-mu)*g/denom: torch.optim.RMSprop adds it undamped, b = mu*b + g/denom",
        dict(ema_momentum=True),
        _momentum,
    ),
    _maximize_ignored("RMSprop"),
]
_ADAM_FAULTS = [
    Fault("no bias correction: divide m by (1 - beta1**t) and v by (1 - beta2**t)", dict(bias_correction=False)),
    Fault("no bias correction of m: divide m by (1 - beta1**t)", dict(correct_m=False)),
    Fault("no bias correction of v: divide v by (1 - beta2**t) before its square root", dict(correct_v=False)),
    Fault(
        "bias correction of v without the square root: sqrt(v) is divided by sqrt(1 - beta2**t), not by (1 - beta2**t)",
        dict(v_correction_unsquared=True),
    ),
    Fault("eps inside the square root: use sqrt(v_hat) + eps, not sqrt(v_hat + eps)", dict(eps_inside=True)),
    Fault("eps added before the bias correction: use sqrt(v / (1 - beta2**t)) + eps", dict(eps_before_correction=True)),
    Fault(
        "off-by-one in t: t starts at 0 (increment the step count before using it; the first step is t=1)",
        dict(t_shift=-1),
    ),
    Fault("off-by-one in t: t is one ahead (the first step must use t=1)", dict(t_shift=1)),
    _ignored("amsgrad", False, "amsgrad=True ignored: divide by the square root of the largest v so far"),
]
LIKES: dict[str, Like] = {
    "sgd": Like(
        torch.optim.SGD,
        so.SGD,
        faulty_sgd,
        {},
        [dict(lr=0.1), dict(lr=0.05, weight_decay=1e-2), dict(lr=0.01, maximize=True)],
        _SGD_FAULTS,
    ),
    "momentum": Like(
        torch.optim.SGD,
        so.SGD,
        faulty_sgd,
        {"momentum": 0.9},
        [
            dict(lr=0.05),
            dict(lr=0.05, momentum=0.5, weight_decay=1e-2),
            dict(lr=0.05, dampening=0.5),
            dict(lr=0.01, maximize=True),
        ],
        _MOMENTUM_FAULTS,
    ),
    "nesterov": Like(
        torch.optim.SGD,
        so.SGD,
        faulty_sgd,
        {"momentum": 0.9, "nesterov": True},
        [dict(lr=0.05), dict(lr=0.05, momentum=0.5, weight_decay=1e-2), dict(lr=0.01, maximize=True)],
        _NESTEROV_FAULTS,  # torch refuses dampening with nesterov
    ),
    "adagrad": Like(
        torch.optim.Adagrad,
        so.Adagrad,
        faulty_adagrad,
        {},
        [
            dict(lr=0.05),
            dict(lr=0.05, lr_decay=1e-2),
            dict(lr=0.05, weight_decay=1e-2, initial_accumulator_value=0.1, eps=1e-6),
            dict(lr=0.05, maximize=True),
        ],
        _ADAGRAD_FAULTS,
    ),
    "rmsprop": Like(
        torch.optim.RMSprop,
        so.RMSprop,
        faulty_rmsprop,
        {},
        [
            dict(lr=1e-3),
            dict(lr=1e-3, alpha=0.9, eps=1e-6, weight_decay=1e-2),
            dict(lr=1e-3, momentum=0.9),
            dict(lr=1e-3, centered=True),
            dict(lr=1e-3, maximize=True),
        ],
        _RMSPROP_FAULTS,
    ),
    "adam": Like(
        torch.optim.Adam,
        so.Adam,
        faulty_adam,
        {},
        [
            dict(lr=1e-2),
            dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2),
            dict(lr=1e-2, amsgrad=True),
            dict(lr=1e-2, maximize=True),
        ],  # not decoupled_weight_decay=True: that is --like adamw
        [
            *_ADAM_FAULTS,
            Fault(
                "weight decay applied to the weights (decoupled, AdamW's): Adam adds it to "
                "the gradient, g = g + weight_decay * p",
                dict(decoupled=True),
                _wd,
            ),
            _maximize_ignored("Adam"),
        ],
    ),
    "adamw": Like(
        torch.optim.AdamW,
        so.AdamW,
        faulty_adam,
        {},
        [
            dict(lr=1e-2),
            dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
            dict(lr=1e-2, weight_decay=0.05, amsgrad=True),
            dict(lr=1e-2, maximize=True),
        ],
        [
            *_ADAM_FAULTS,
            Fault(
                "L2 instead of decoupled weight decay: AdamW shrinks the weights, "
                "p = p * (1 - lr * weight_decay), before the Adam step; it does not add "
                "weight_decay * p to the gradient",
                dict(decoupled=False),
                _wd,
            ),
            Fault(
                "weight decay not multiplied by lr: AdamW shrinks the weights by p = p * (1 - lr * weight_decay)",
                dict(decay_with_lr=False),
                _wd,
            ),
            _maximize_ignored("AdamW"),
        ],
        decoupled=True,
    ),
}


@dataclass(frozen=True)
class Check:
    """One row of the table: a case's kwargs, trained plainly, across a resume, or with grad None sometimes."""

    label: str
    kwargs: dict[str, Any]
    resume: bool = False
    sometimes: bool = False
    lr_change: bool = False

    @property
    def plain(self) -> bool:
        """A hyperparameter case as it is (not resumed, no lr change, every gradient there)."""
        return not (self.resume or self.sometimes or self.lr_change)

    def train(self, make: Callable[[Any], torch.optim.Optimizer], steps: int = STEPS) -> Run:
        """`train` with `make(params)` the way this check trains."""
        return train(make, resume=self.resume, sometimes=self.sometimes, lr_change=self.lr_change, steps=steps)


def checks_for(like: Like) -> list[Check]:
    """The hyperparameter cases as they are, then the first case resumed mid-way, with its lr changed mid-way,
    and with grad None."""
    rows = []
    for i, case in enumerate(like.cases):
        kwargs = {"lr": case["lr"], **like.fixed, **case}
        label = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        rows.append(Check(label + (" (the rest: defaults)" if i == 0 else ""), kwargs))
    first = rows[0].kwargs
    rows.append(Check(f"state_dict saved and loaded at step {RESUME_AT}", first, resume=True))
    rows.append(Check(f"lr set to {LR_CHANGE:g}x at step {RESUME_AT} (as a schedule does)", first, lr_change=True))
    rows.append(Check("grad None on odd steps (layer 'extra')", first, sometimes=True))
    return rows


def torch_defaults(cls: type[torch.optim.Optimizer]) -> dict[str, Any]:
    """The keyword arguments of `cls` that have a default, with it (lr=0.001, betas=(0.9, 0.999), ...)."""
    return {
        k: v.default for k, v in inspect.signature(cls).parameters.items() if v.default is not inspect.Parameter.empty
    }


def faulty_class(like: Like, fault: Fault | None) -> Callable[..., torch.optim.Optimizer]:
    """A torch.optim.Optimizer making `fault` (None: no mistake), with the defaults of like.torch_cls."""
    defaults = torch_defaults(like.torch_cls)
    update = functools.partial(like.faulty, **{"decoupled": like.decoupled, **(fault.switches if fault else {})})
    ignored = {k: defaults[k] for k in (fault.ignores if fault else ())}

    class Faulty(FunctionalOptimizer):
        hyper_names = tuple(defaults)

        def __init__(self, params: Any, **kwargs: Any) -> None:
            super().__init__(params, {**defaults, **kwargs, **ignored})

    Faulty.update = staticmethod(update)  # type: ignore[assignment]
    Faulty.init_state = staticmethod(_faulty_state)  # type: ignore[assignment]
    return Faulty


# ------------------------------------------------------------------------------------------------ running it
@dataclass
class Result:
    """A check's outcome: the student's run, the comparisons with both references, and the likely cause."""

    check: Check
    student: Run
    reference: Run
    vs_torch: Comparison
    vs_sweep: Comparison
    cause: str | None = None
    skipped: str | None = None  # why the student's class could not run this check (an argument it lacks)

    @property
    def passed(self) -> bool:
        """No failure: it agreed with torch.optim, or could not run (SKIPPED, said in the table)."""
        return self.skipped is not None or (self.vs_torch.first is None and self.student.blew_up is None)


def likely_cause(like: Like, result: Result, failed_plain: bool) -> str | None:
    """The cause named by the first faulty optimizer that follows the student from the start to CAUSE_WINDOW
    steps past where the student parts from torch.optim, else a cause read from which checks failed."""
    check, student, first = result.check, result.student, result.vs_torch.first
    window = min(STEPS, (first[0] if first else 0) + CAUSE_WINDOW)
    for fault in like.faults:
        if not fault.applies({**torch_defaults(like.torch_cls), **check.kwargs}):  # AdamW decays by default
            continue
        if fault.lr_changes_only and not check.lr_change:
            continue
        cls = faulty_class(like, fault)
        # the faulty run only has to reach the end of the window it is compared over
        faulty = check.train(lambda ps: cls(ps, **check.kwargs), steps=window)
        if compare(student, faulty, window).first is None:
            return fault.cause
    if check.resume and not failed_plain:
        return (
            "state lost across state_dict()/load_state_dict(): keep every per-parameter quantity "
            "(step count, averages) in self.state[p]"
        )
    if check.lr_change and not failed_plain:
        return (
            "the learning rate read once (kept from __init__, or folded into a buffer): read group['lr'] at "
            "every step, a schedule changes it between steps"
        )
    if check.sometimes and not failed_plain:
        return (
            "a parameter with grad None was updated, or a step count shared by all parameters advanced for "
            "it: skip p.grad is None and keep t in self.state[p]"
        )
    return None


def run_checks(
    student_cls: type[torch.optim.Optimizer],
    like: Like,
    skip: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> list[Result]:
    """Every check of `like` on the student's class; causes are looked for on failures only (they cost runs).
    `skip`: check labels the class cannot run (`check_constructor`), each with why: shown, not run.
    `timeout_s`: the student's run of one check taking longer raises StepTimeout (a hang)."""
    results = []
    skip = skip or {}
    for check in checks_for(like):
        if check.label in skip:
            empty = Run()
            nothing = Comparison(float("nan"), None)
            results.append(Result(check, empty, empty, nothing, nothing, skipped=skip[check.label]))
            continue
        kw = dict(check.kwargs)
        ref = check.train(lambda ps: like.torch_cls(ps, **kw))
        ours = check.train(lambda ps: like.sweep_cls(ps, **kw))
        with time_limit(timeout_s, f"{student_cls.__name__} in the check '{check.label}'"):
            student = check.train(lambda ps: student_cls(ps, **kw))
        results.append(Result(check, student, ref, compare(student, ref), compare(student, ours)))
    plain_failed = any(not r.passed for r in results if r.check.plain)
    for r in results:
        if not r.passed:
            r.cause = likely_cause(like, r, plain_failed)
    return results


# ------------------------------------------------------------------------------------------------ reporting
def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1e}"


def report(name: str, like_name: str, like: Like, results: list[Result]) -> str:
    """The table (check, max rel. diff vs torch.optim and vs sweep.optim, PASS/FAIL), then one line per failure:
    where the student first parts from torch.optim and the likely cause."""
    ref = f"torch.optim.{like.torch_cls.__name__}"
    lines = [f"{name} vs {ref} (--like {like_name}): MLP in float64, {STEPS} steps, rtol {RTOL:g}", ""]
    width = max(len(r.check.label) for r in results)
    lines.append(f"{'check':<{width}}  {'vs torch':>9}  {'vs sweep':>9}  result")
    for r in results:
        if r.skipped:
            lines.append(f"{r.check.label:<{width}}  {'-':>9}  {'-':>9}  SKIPPED: {r.skipped}")
            continue
        lines.append(
            f"{r.check.label:<{width}}  {_fmt(r.vs_torch.worst):>9}  {_fmt(r.vs_sweep.worst):>9}  "
            f"{'PASS' if r.passed else 'FAIL'}"
        )
    failed = [r for r in results if not r.passed]
    skipped = [r for r in results if r.skipped]
    causes = list(dict.fromkeys(r.cause for r in failed if r.cause))  # distinct, in order: said once each
    if failed:
        lines.append("")
    for r in failed:
        first = r.vs_torch.first
        if first is None or first[0] == r.student.blew_up:  # parted by blowing up
            where = f"step {(r.student.blew_up or 0) + 1}: {r.student.error}"
        else:
            where = f"step {first[0] + 1}, parameter {first[1]} (rel. diff {_fmt(first[2])})"
        mark = f" [cause {causes.index(r.cause) + 1}]" if r.cause else ""
        lines.append(f"FAIL {r.check.label}: first parts from {ref} at {where}{mark}")
    for i, cause in enumerate(causes):
        lines.append(f"likely cause {i + 1}: {cause}")
    lines.append("")
    ran = len(results) - len(skipped)
    lines.append(
        f"{ran - len(failed)}/{ran} checks passed" + (f" ({len(skipped)} skipped: see SKIPPED)" if skipped else "")
    )
    return "\n".join(lines)


def plot(results: list[Result], name: str, ref: str, path: str) -> None:
    """One panel per check: the student's and torch.optim's minibatch loss per step (Agg backend, a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.5 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        ax.plot(range(1, len(r.reference.losses) + 1), r.reference.losses, label=ref, lw=2.5, alpha=0.6)
        ax.plot(range(1, len(r.student.losses) + 1), r.student.losses, label=name, lw=1, ls="--")
        verdict = "SKIPPED" if r.skipped else "PASS" if r.passed else "FAIL"
        ax.set(title=f"{verdict}  {r.check.label}", xlabel="step", ylabel="loss", yscale="log")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(results) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ input
def load_class(spec: str) -> type[torch.optim.Optimizer]:
    """MODULE.CLS imported as `python -m` finds modules (the current directory first, then PYTHONPATH), checked
    to be a torch.optim.Optimizer subclass; anything else is a one-line error (exit 2)."""
    module_name, dot, attr = spec.rpartition(".")
    if not dot or not module_name or not attr:
        fail(f"'{spec}' is not MODULE.CLASS: write e.g. `sweep check myopt.MyAdam --like adam` beside myopt.py")
    try:
        module = import_student_module(module_name)
    except (Exception, SystemExit) as e:  # the student's module may raise anything (or exit) while it imports
        what = _raised(e) if isinstance(e, SystemExit) else described(e)
        fail(f"cannot import module '{module_name}' (for {spec}): {what}")
    if not hasattr(module, attr):
        found = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isclass(v) and issubclass(v, torch.optim.Optimizer) and v.__module__ == module_name
        )
        fail(
            f"module '{module_name}' ({getattr(module, '__file__', '?')}) has no attribute '{attr}'"
            + (f"; its optimizers: {', '.join(found)}" if found else "")
        )
    cls = getattr(module, attr)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        kind = "a class" if inspect.isclass(cls) else f"a {type(cls).__name__}"
        fail(f"{spec} is {kind}, not a torch.optim.Optimizer subclass")
    return cls


def check_constructor(spec: str, cls: type[torch.optim.Optimizer], like_name: str, like: Like) -> dict[str, str]:
    """Construct `cls` with every check's kwargs on a dummy parameter. The first case (the defaults) must
    construct, else bad input (one line, exit 2); a later case it rejects (an argument it lacks, such as an Adam
    without `amsgrad`) is returned as {check label: why}, shown SKIPPED and not graded."""
    names = list(dict.fromkeys(k for c in like.cases for k in {"lr": 0, **like.fixed, **c}))
    checks = checks_for(like)[: len(like.cases)]
    skip = {}
    for i, check in enumerate(checks):
        try:
            cls([torch.zeros(2, dtype=torch.float64, requires_grad=True)], **check.kwargs)
        except (Exception, SystemExit) as e:
            args = ", ".join(f"{k}={v}" for k, v in check.kwargs.items())
            if i == 0:
                fail(
                    f"{spec}({args}) {_raised(e)}; the --like {like_name} checks "
                    f"pass {', '.join(names)} as torch.optim.{like.torch_cls.__name__} takes them"
                )
            skip[check.label] = f"{cls.__name__}({args}) {_raised(e)}"
    return skip


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are sweep's one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (usage: sweep check MODULE.CLS --like {{{','.join(LIKES)}}} [--plot PNG])")


def main(argv: Sequence[str] | None = None) -> None:
    p = _Parser(
        prog="sweep check",
        description="Check a torch.optim.Optimizer subclass against torch.optim and "
        "sweep.optim: same MLP, same batches, float64; exit 0 when every check agrees to rtol "
        f"{RTOL:g}, 1 otherwise.",
    )
    p.add_argument("cls", metavar="MODULE.CLS", help="e.g. myopt.MyAdam (myopt.py in the current directory)")
    p.add_argument("--like", required=True, metavar="NAME", help=f"the reference: {', '.join(LIKES)}")
    p.add_argument("--plot", metavar="PNG", help="draw the student's and torch.optim's loss curves to PNG")
    p.add_argument(
        "--timeout",
        type=float,
        default=CHECK_TIMEOUT_S,
        metavar="S",
        help=f"seconds the student's optimizer may take for one check before it counts as hung ({CHECK_TIMEOUT_S:g})",
    )
    a = p.parse_args(list(argv) if argv is not None else None)
    if a.like not in LIKES:
        fail(f"unknown --like '{a.like}'; choices: {', '.join(LIKES)}")
    if a.plot and not os.path.isdir(os.path.dirname(os.path.abspath(a.plot))):  # say so before, not after, the runs
        fail(f"--plot {a.plot}: the folder {os.path.dirname(os.path.abspath(a.plot))} does not exist")
    sys.exit(_in_own_process(_grade, a.cls, a.like, a.plot, a.timeout))


def _in_own_process(fn: Callable[..., int], spec: str, *args: Any) -> int:
    """fn(spec, *args) in a spawned process of its own, its exit status: a student's code that ends its process
    (os._exit, a crash in native code) ended `sweep check` with status 0 and no output, a pass; now a FAIL."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        try:
            return pool.submit(fn, spec, *args).result()  # fail()'s SystemExit(2) comes back raised, as it was
        except BrokenProcessPool:
            print(f"sweep check: FAIL: {spec} ended the checking process without a word (os._exit, or a crash)",
                  file=sys.stderr)  # fmt: skip
            return 1


def _grade(spec: str, like_name: str, plot_to: str | None, timeout_s: float) -> int:
    """Import, construct and grade the student's class; print the report (and draw --plot). 0: every check
    passed; 1: one failed or the class hung; bad input raises fail()'s SystemExit(2)."""
    like = LIKES[like_name]
    torch.set_num_threads(1)  # tensors of a few hundred entries (benchmarks/README.md, "Threads")
    cls = load_class(spec)
    skip = check_constructor(spec, cls, like_name, like)
    try:
        results = run_checks(cls, like, skip, timeout_s=timeout_s)
    except StepTimeout as e:
        print(f"sweep check: FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    print(report(spec, like_name, like, results), flush=True)
    if plot_to:
        plot(results, spec, f"torch.optim.{like.torch_cls.__name__}", plot_to)
        print(f"loss curves: {plot_to}", flush=True)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    main()
