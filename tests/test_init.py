"""sweep.init.init_weight: the variance each scheme promises, on large layers; and the zeros-init symmetry problem."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sweep import model as mlp
from sweep.init import INITS, init_weight
from sweep.optim import sgd

CONF = Path(__file__).resolve().parents[1] / "conf" / "init"


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def draw(scheme: str, fan_in: int, fan_out: int, seed: int = 0, **kw) -> torch.Tensor:
    return init_weight(
        scheme, fan_in, fan_out, generator=torch.Generator().manual_seed(seed), dtype=torch.float64, **kw
    )


# scheme -> variance as a function of (fan_in, fan_out)
VARIANCE = {
    "lecun_normal": lambda i, o: 1 / i,
    "he_normal": lambda i, o: 2 / i,
    "xavier_normal": lambda i, o: 2 / (i + o),
    "xavier_uniform": lambda i, o: 2 / (i + o),
    "normal": lambda i, o: 0.05**2,
}


@pytest.mark.parametrize("fan_in,fan_out", [(1000, 1000), (400, 1600), (1600, 400)])
@pytest.mark.parametrize("scheme", list(VARIANCE))
def test_variance_matches_formula(scheme: str, fan_in: int, fan_out: int) -> None:
    """Non-square layers catch a transposed fan: lecun on [400, 1600] must give 1/400, not 1/1600."""
    w = draw(scheme, fan_in, fan_out, std=0.05)
    assert w.shape == (fan_in, fan_out)
    want = VARIANCE[scheme](fan_in, fan_out)
    assert float(w.var()) == pytest.approx(want, rel=0.02)
    assert abs(float(w.mean())) < 5 * math.sqrt(want / w.numel())


def test_xavier_uniform_bound() -> None:
    w = draw("xavier_uniform", 300, 500)
    bound = math.sqrt(6 / 800)
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound


@pytest.mark.parametrize("fan_in,fan_out", [(256, 256), (100, 300), (300, 100)])
def test_orthogonal(fan_in: int, fan_out: int) -> None:
    w = draw("orthogonal", fan_in, fan_out)
    assert w.shape == (fan_in, fan_out)
    n = min(fan_in, fan_out)
    gram = w @ w.T if fan_in <= fan_out else w.T @ w  # the smaller side is orthonormal
    torch.testing.assert_close(gram, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)
    if fan_in == fan_out:
        torch.testing.assert_close(w.T @ w, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)


def test_zeros() -> None:
    assert torch.equal(draw("zeros", 7, 5), torch.zeros(7, 5, dtype=torch.float64))


@pytest.mark.parametrize("scheme", INITS)
def test_scale_multiplies(scheme: str) -> None:
    one, three = draw(scheme, 50, 40, seed=3, std=0.1), draw(scheme, 50, 40, seed=3, std=0.1, scale=3.0)
    torch.testing.assert_close(three, 3 * one, rtol=1e-15, atol=0)
    if scheme != "zeros":
        assert float(draw(scheme, 300, 300, scale=0.5).var()) == pytest.approx(
            0.25 * float(draw(scheme, 300, 300).var()), rel=1e-12
        )


@pytest.mark.parametrize("scheme", INITS)
def test_deterministic_given_generator(scheme: str) -> None:
    a, b = draw(scheme, 20, 30, seed=1), draw(scheme, 20, 30, seed=1)
    assert torch.equal(a, b)
    if scheme != "zeros":
        assert not torch.equal(a, draw(scheme, 20, 30, seed=2))
    w = init_weight(scheme, 20, 30, generator=torch.Generator().manual_seed(1))
    assert w.dtype == torch.float32 and w.shape == (20, 30) and w.is_contiguous()
    assert torch.equal(w, a.float())


def test_every_config_option_exists() -> None:
    names = {p.stem for p in CONF.glob("*.yaml")}
    assert names == set(INITS)


# ------------------------------------------------------------------------------------------------ symmetry
def _train(init: str, activation: str, steps: int = 50) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=g)
    spec = {"name": init, "std": 0.01, "scale": 1.0, "bias": 0.0}
    params = mlp.init_params(
        [4, 8, 3], [spec], [torch.Generator().manual_seed(1)], dtype=torch.float64, device=torch.device("cpu")
    )
    start = [p.detach().clone() for p in params]
    states = [sgd.init_state(p) for p in params]
    for _ in range(steps):
        loss = mlp.per_model_loss(mlp.forward(params, x, activation), y, "classification")
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            for p, gr, st in zip(params, grads, states):
                sgd.update(p, gr, st, lr=torch.tensor([0.5], dtype=torch.float64), momentum=0.9)
    return start, [p.detach() for p in params]


def _units_identical(w1: torch.Tensor, w2: torch.Tensor) -> bool:
    """All hidden units have the same incoming column of W1 [K, in, hidden] and outgoing row of W2 [K, hidden, out]."""
    cols, rows = w1[0].T, w2[0]
    return bool(
        torch.allclose(cols, cols[:1].expand_as(cols), rtol=1e-12, atol=1e-15)
        and torch.allclose(rows, rows[:1].expand_as(rows), rtol=1e-12, atol=1e-15)
    )


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_zeros_init_keeps_hidden_units_identical(activation: str) -> None:
    start, end = _train("zeros", activation)
    assert [tuple(p.shape) for p in end] == [(1, 4, 8), (1, 1, 8), (1, 8, 3), (1, 1, 3)]
    assert _units_identical(end[0], end[2])
    assert not torch.equal(end[3], start[3]), "training ran: the output bias learned the class frequencies"
    if activation == "sigmoid":
        # σ(0) = 1/2 ≠ 0, so the weights do move, yet every hidden unit moves identically
        assert float(end[0].abs().max()) > 1e-3 and float(end[2].abs().max()) > 1e-3


def test_random_init_breaks_the_symmetry() -> None:
    _, end = _train("lecun_normal", "sigmoid")
    assert not _units_identical(end[0], end[2])
