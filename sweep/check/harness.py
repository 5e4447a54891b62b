"""The training problem every check runs: one small float64 MLP, its minibatches, `train` (with a state_dict
save/load or an lr change mid-way), and the comparison of two trajectories."""

from __future__ import annotations

import copy
import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sweep.deadline import StepTimeout
from sweep.errors import described

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
