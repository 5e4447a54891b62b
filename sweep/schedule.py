"""Learning-rate schedules as pure functions of the step: lr(t) for any t, without replaying steps.

Every function maps steps t (array) and base rates lr0 (array, one per model) to rates [len(t), len(lr0)], in
float64, so a pack of K models with different schedule parameters is one call. Where torch.optim.lr_scheduler
has the same schedule, stepping it once per optimizer step gives the same numbers (tests/test_schedule.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def _col(x) -> Array:
    return np.asarray(x, dtype=np.float64).reshape(1, -1)


def tick_length(total_steps: int, ticks_per_run) -> Array:
    """Steps per tick of a schedule's clock: 1 (the clock counts optimizer steps) where ticks_per_run is 0, else
    the run split into ticks_per_run ticks, round(total_steps / ticks_per_run) steps each (ticks_per_run =
    epochs: a tick per epoch, exactly steps_per_epoch; 100: a tick per 1 % of the run)."""
    n = np.asarray(ticks_per_run, dtype=np.float64)
    return np.where(n > 0, np.maximum(np.round(total_steps / np.where(n > 0, n, 1.0)), 1.0), 1.0)


def constant(t: Array, lr: Array, total_steps: int, **_) -> Array:
    return np.broadcast_to(lr, (len(t), lr.shape[1])).copy()


def step(
    t: Array, lr: Array, total_steps: int, *, step_size: Array, gamma: Array, ticks_per_run: Array = 0, **_
) -> Array:
    """lr0 · γ^⌊t / (step_size · tick)⌋ (torch StepLR): step_size in ticks of `tick_length` steps (one step each
    by default; step_size=3 ticks_per_run=${epochs} halves every 3 epochs with gamma=0.5)."""
    return lr * gamma ** np.floor(t / (step_size * tick_length(total_steps, ticks_per_run)))


def exponential(t: Array, lr: Array, total_steps: int, *, gamma: Array, ticks_per_run: Array = 0, **_) -> Array:
    """lr0 · γ^(t / tick) (torch ExponentialLR): γ per tick of `tick_length` steps (per step by default)."""
    return lr * gamma ** (t / tick_length(total_steps, ticks_per_run))


def inverse_time(t: Array, lr: Array, total_steps: int, *, decay: Array, ticks_per_run: Array = 0, **_) -> Array:
    """lr0 / (1 + decay · t / tick): the Robbins–Monro taper (Σ lr = ∞, Σ lr² < ∞), t counted in ticks of
    `tick_length` steps (steps by default). Smooth, not a staircase: t / tick is fractional, so with decay=1
    ticks_per_run=${epochs} ("1/t per epoch") the rate is lr0 / (1 + e) at the first step of epoch e and falls
    step by step to just above lr0 / (2 + e) at its last; lr0 / (1 + epochs) only after the run's last step."""
    return lr / (1 + decay * t / tick_length(total_steps, ticks_per_run))


def cosine(t: Array, lr: Array, total_steps: int, *, min_lr: Array, **_) -> Array:
    """min + (lr0 − min)(1 + cos(π t / T)) / 2 (torch CosineAnnealingLR with T_max = T)."""
    return min_lr + (lr - min_lr) * (1 + np.cos(np.pi * np.minimum(t, total_steps) / total_steps)) / 2


def warmup_cosine(t: Array, lr: Array, total_steps: int, *, warmup_steps: Array, min_lr: Array, **_) -> Array:
    """Linear warm-up lr0 · t / W for t < W, then cosine from lr0 to min over the remaining T − W steps."""
    w = np.maximum(warmup_steps, 1)
    warm = lr * t / w
    rest = np.maximum(total_steps - warmup_steps, 1)
    cos = min_lr + (lr - min_lr) * (1 + np.cos(np.pi * np.clip(t - warmup_steps, 0, rest) / rest)) / 2
    return np.where(t < warmup_steps, warm, cos)


def linear(t: Array, lr: Array, total_steps: int, **_) -> Array:
    """lr0 · (1 − t / T): straight to zero at the end (torch LinearLR(1, 0, T))."""
    return lr * (1 - np.minimum(t, total_steps) / total_steps)


def onecycle(
    t: Array, lr: Array, total_steps: int, *, pct_start: Array, div_factor: Array, final_div_factor: Array, **_
) -> Array:
    """Cosine up from lr0/div to lr0 over pct_start of the run, then down to lr0/(div·final_div) (torch OneCycleLR)."""
    initial = lr / div_factor
    final = initial / final_div_factor
    peak_step = pct_start * total_steps - 1
    end_step = total_steps - 1

    def anneal(start, end, pct):
        return end + (start - end) / 2 * (np.cos(np.pi * pct) + 1)

    up = anneal(initial, lr, t / peak_step)
    down = anneal(lr, final, (t - peak_step) / (end_step - peak_step))
    return np.where(t <= peak_step, up, down)


SCHEDULES: dict[str, Callable[..., Array]] = {
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "inverse_time": inverse_time,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
    "linear": linear,
    "onecycle": onecycle,
}
PARAMS = (
    "step_size",
    "gamma",
    "decay",
    "min_lr",
    "warmup_steps",
    "pct_start",
    "div_factor",
    "final_div_factor",
    "ticks_per_run",
)


def lr_table(name: str, steps: Array, base_lr, total_steps: int, params: dict[str, list]) -> Array:
    """Rates [len(steps), K] of K models sharing the schedule `name`; params[key] holds K values each."""
    t = np.asarray(steps, dtype=np.float64).reshape(-1, 1)
    kw = {k: _col(v) for k, v in params.items() if k in PARAMS}
    return SCHEDULES[name](t, _col(base_lr), total_steps, **kw)
