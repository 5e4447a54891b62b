"""sweep.schedule.lr_table against torch.optim.lr_scheduler, stepped once per optimizer step.

lr_table gives lr(t) in closed form; torch's schedulers mostly compute it recursively (chainable form). Over the runs
here the two agree to ~1e-14 relative, so the comparison is with torch's stepped values at 1e-12.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as S

from sweep.schedule import PARAMS, SCHEDULES, lr_table

LR = 0.1


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


RTOL = 1e-12


def torch_lrs(make, total: int, lr: float = LR) -> np.ndarray:
    """The lr torch's scheduler gives the optimizer at each step t = 0..total-1."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt, total)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(out)


def ours(name: str, total: int, lr: float = LR, steps=None, **params) -> np.ndarray:
    steps = np.arange(total) if steps is None else steps
    table = lr_table(name, steps, [lr], total, {k: [v] for k, v in params.items()})
    assert table.shape == (len(steps), 1) and table.dtype == np.float64
    return table[:, 0]


def onecycle(pct: float, div: float, final: float):
    return (
        dict(pct_start=pct, div_factor=div, final_div_factor=final),
        lambda o, T: S.OneCycleLR(
            o,
            max_lr=o.param_groups[0]["lr"],
            total_steps=T,
            pct_start=pct,
            div_factor=div,
            final_div_factor=final,
            anneal_strategy="cos",
            three_phase=False,
            cycle_momentum=False,
        ),
    )


CASES = [
    ("constant", {}, lambda o, T: S.ConstantLR(o, factor=1.0, total_iters=T)),
    ("step", dict(step_size=30, gamma=0.5), lambda o, T: S.StepLR(o, step_size=30, gamma=0.5)),
    ("step", dict(step_size=7, gamma=0.9), lambda o, T: S.StepLR(o, step_size=7, gamma=0.9)),
    ("exponential", dict(gamma=0.99), lambda o, T: S.ExponentialLR(o, gamma=0.99)),
    ("exponential", dict(gamma=0.9995), lambda o, T: S.ExponentialLR(o, gamma=0.9995)),
    ("cosine", dict(min_lr=0.0), lambda o, T: S.CosineAnnealingLR(o, T_max=T, eta_min=0.0)),
    ("cosine", dict(min_lr=1e-3), lambda o, T: S.CosineAnnealingLR(o, T_max=T, eta_min=1e-3)),
    ("linear", {}, lambda o, T: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=T)),
    ("inverse_time", dict(decay=0.01), lambda o, T: S.LambdaLR(o, lambda t: 1 / (1 + 0.01 * t))),
    ("inverse_time", dict(decay=0.5), lambda o, T: S.LambdaLR(o, lambda t: 1 / (1 + 0.5 * t))),
    ("onecycle", *onecycle(0.3, 25.0, 1e4)),
    ("onecycle", *onecycle(0.25, 10.0, 100.0)),
    ("onecycle", *onecycle(0.5, 4.0, 1e3)),
]


@pytest.mark.parametrize("total", [37, 1000])
@pytest.mark.parametrize(
    "name,params,make", CASES, ids=[f"{n}-{','.join(f'{k}={v}' for k, v in p.items()) or 'plain'}" for n, p, _ in CASES]
)
def test_matches_torch_scheduler(name: str, params: dict, make, total: int) -> None:
    got, ref = ours(name, total, **params), torch_lrs(make, total)
    rel = np.abs(got - ref) / np.abs(ref)
    assert rel.max() <= RTOL, f"{name}: worst relative difference {rel.max():.3g} at t={rel.argmax()}"
    if name != "constant":
        assert ref.min() < ref.max(), "vacuous: the schedule did not change the rate"


def test_closed_forms_by_hand() -> None:
    assert ours("step", 100, step_size=10, gamma=0.5)[[0, 9, 10, 25, 99]].tolist() == [
        0.1,
        0.1,
        0.05,
        0.025,
        0.1 * 0.5**9,
    ]
    np.testing.assert_allclose(ours("exponential", 5, gamma=0.5), [0.1, 0.05, 0.025, 0.0125, 0.00625], rtol=1e-15)
    np.testing.assert_allclose(ours("inverse_time", 3, decay=1.0), [0.1, 0.05, 0.1 / 3], rtol=1e-15)
    cos = ours("cosine", 4, min_lr=0.02)
    np.testing.assert_allclose(
        cos,
        [0.1, 0.02 + 0.08 * (1 + math.cos(math.pi / 4)) / 2, 0.06, 0.02 + 0.08 * (1 + math.cos(3 * math.pi / 4)) / 2],
        rtol=1e-15,
    )
    np.testing.assert_allclose(ours("linear", 4), [0.1, 0.075, 0.05, 0.025], rtol=1e-15)
    # onecycle: starts at lr/div, peaks at lr at step pct·T − 1, ends at lr/(div·final_div) at T − 1
    one = ours("onecycle", 100, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    assert one[0] == pytest.approx(0.1 / 25, rel=1e-15) and one[29] == pytest.approx(0.1, rel=1e-15)
    assert one[99] == pytest.approx(0.1 / 25 / 1e4, rel=1e-12) and one.argmax() == 29


# ------------------------------------------------------------------------------------------------ warmup_cosine
@pytest.mark.parametrize("total,warmup,min_lr", [(400, 50, 0.0), (400, 50, 1e-3), (101, 10, 0.01), (60, 1, 0.0)])
def test_warmup_cosine(total: int, warmup: int, min_lr: float) -> None:
    full = ours("warmup_cosine", total, steps=np.arange(total + 1), warmup_steps=warmup, min_lr=min_lr)
    assert full[0] == 0.0
    assert full[warmup] == LR
    assert full[total] == min_lr
    assert np.all(np.diff(full[: warmup + 1]) > 0)
    assert np.all(np.diff(full[warmup:]) <= 0) and full[total - 1] > min_lr
    # by hand: linear up, then the cosine over the remaining total − warmup steps
    for t in range(0, total + 1, 7):
        if t < warmup:
            want = LR * t / warmup
        else:
            want = min_lr + (LR - min_lr) * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) / 2
        assert full[t] == pytest.approx(want, rel=1e-14, abs=1e-300)
    # and torch's composition: a linear warm-up from (almost) zero, then CosineAnnealingLR
    ref = torch_lrs(
        lambda o, T: S.SequentialLR(
            o,
            [
                S.LinearLR(o, start_factor=1e-300, end_factor=1.0, total_iters=warmup),
                S.CosineAnnealingLR(o, T_max=T - warmup, eta_min=min_lr),
            ],
            milestones=[warmup],
        ),
        total,
    )
    np.testing.assert_allclose(full[:total], ref, rtol=RTOL, atol=1e-15 * LR)


def test_warmup_zero_is_cosine() -> None:
    np.testing.assert_array_equal(
        ours("warmup_cosine", 300, warmup_steps=0, min_lr=0.01), ours("cosine", 300, min_lr=0.01)
    )


# ------------------------------------------------------------------------------------------------ purity, K-vectors
ALL = {
    "constant": {},
    "step": dict(step_size=13, gamma=0.7),
    "exponential": dict(gamma=0.995),
    "inverse_time": dict(decay=0.02),
    "cosine": dict(min_lr=1e-3),
    "warmup_cosine": dict(warmup_steps=20, min_lr=1e-3),
    "linear": {},
    "onecycle": dict(pct_start=0.3, div_factor=25.0, final_div_factor=1e4),
}


def test_every_schedule_is_covered() -> None:
    assert set(ALL) == set(SCHEDULES)
    assert all(set(p) <= set(PARAMS) for p in ALL.values())


@pytest.mark.parametrize("name", list(ALL))
def test_pure_function_of_the_step(name: str) -> None:
    """Rows for steps [a, b) equal the same rows of the whole table: resuming needs only the step index."""
    total = 200
    full = ours(name, total, **ALL[name])
    for a, b in [(0, 1), (57, 113), (150, 200), (199, 200)]:
        np.testing.assert_array_equal(ours(name, total, steps=np.arange(a, b), **ALL[name]), full[a:b])
    shuffled = np.array([120, 3, 77, 3])
    np.testing.assert_array_equal(ours(name, total, steps=shuffled, **ALL[name]), full[shuffled])


KVEC = {
    "constant": {},
    "step": dict(step_size=[13, 50, 7], gamma=[0.7, 0.5, 0.99]),
    "exponential": dict(gamma=[0.995, 0.9, 0.999]),
    "inverse_time": dict(decay=[0.02, 0.5, 0.0]),
    "cosine": dict(min_lr=[1e-3, 0.0, 0.05]),
    "warmup_cosine": dict(warmup_steps=[20, 0, 100], min_lr=[1e-3, 0.0, 1e-4]),
    "linear": {},
    "onecycle": dict(pct_start=[0.3, 0.1, 0.5], div_factor=[25.0, 10.0, 4.0], final_div_factor=[1e4, 10.0, 1e2]),
}


@pytest.mark.parametrize("name", list(KVEC))
def test_k_models_in_one_call_equal_separate_calls(name: str) -> None:
    total, lrs = 200, [0.1, 0.03, 1.0]
    steps = np.arange(total)
    params = dict(KVEC[name], ignored_key=[1, 2, 3])  # keys outside PARAMS (the engine passes all) are ignored
    table = lr_table(name, steps, lrs, total, params)
    assert table.shape == (total, 3)
    for k in range(3):
        alone = lr_table(name, steps, [lrs[k]], total, {key: [v[k]] for key, v in params.items()})
        np.testing.assert_array_equal(table[:, k], alone[:, 0])
    if KVEC[name]:
        scaled = table / np.array(lrs)
        assert not np.allclose(scaled[:, 0], scaled[:, 1]), "vacuous: the models' schedules coincide"


# ------------------------------------------------------------------------------------------------ ticks_per_run
# A run of 10 epochs x 21 steps (digits, batch 64): ticks_per_run=10 makes the clock count epochs.
EPOCHS, SPE = 10, 21


def test_step_halves_every_3_epochs_with_an_epoch_clock() -> None:
    got = ours("step", EPOCHS * SPE, step_size=3, gamma=0.5, ticks_per_run=EPOCHS)
    by_hand = [LR * 0.5 ** (t // (3 * SPE)) for t in range(EPOCHS * SPE)]
    np.testing.assert_array_equal(got, by_hand)
    assert got[3 * SPE - 1] == LR and got[3 * SPE] == LR / 2 and got[9 * SPE] == LR / 8


def test_inverse_time_is_one_over_t_per_epoch() -> None:
    got = ours("inverse_time", EPOCHS * SPE, decay=1.0, ticks_per_run=EPOCHS)
    t = np.arange(EPOCHS * SPE)
    np.testing.assert_allclose(got, LR / (1 + t / SPE), rtol=1e-15)
    # epoch starts: lr, lr/2, lr/3, ...
    np.testing.assert_allclose(got[::SPE], [LR / (1 + e) for e in range(EPOCHS)], rtol=1e-15)


def test_exponential_gamma_per_tick_and_fractions_of_the_run() -> None:
    got = ours("exponential", 200, gamma=0.5, ticks_per_run=4)  # a tick = 50 steps = a quarter of the run
    assert got[0] == LR and got[50] == pytest.approx(LR / 2, rel=1e-15) and got[150] == pytest.approx(LR / 8)
    # a tick is round(total / ticks) steps, at least one
    assert ours("step", 100, step_size=1, gamma=0.5, ticks_per_run=3)[[32, 33, 34]].tolist() == [LR, LR / 2, LR / 2]
    assert ours("step", 5, step_size=1, gamma=0.5, ticks_per_run=5).tolist() == [LR * 0.5**t for t in range(5)]


def test_ticks_per_run_zero_counts_steps_and_mixes_in_a_pack() -> None:
    base = ours("step", 100, step_size=10, gamma=0.5)
    np.testing.assert_array_equal(ours("step", 100, step_size=10, gamma=0.5, ticks_per_run=0), base)
    table = lr_table(
        "step", np.arange(100), [LR, LR], 100, {"step_size": [10, 1], "gamma": [0.5, 0.5], "ticks_per_run": [0, 10]}
    )
    np.testing.assert_array_equal(table[:, 0], base)
    np.testing.assert_array_equal(table[:, 1], base)  # 1 tick of 100/10 = 10 steps
