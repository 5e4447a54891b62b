"""What `--like NAME` checks: each family's reference classes, hyperparameter cases and known mistakes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import sweep.optim as so
from sweep.check.harness import LR_CHANGE, RESUME_AT, STEPS, Run, train
from sweep.check.mistakes import Fault, _faulty_state, _ignored, faulty_adagrad, faulty_adam, faulty_rmsprop, faulty_sgd
from sweep.optim.base import FunctionalOptimizer


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
