"""Simulated annealing (sweep.optim.anneal): the Metropolis rule, its cost count, determinism, packs of K."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from sweep.optim import SimulatedAnnealing, anneal_step

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


D = 10
TARGET = torch.linspace(-1.0, 1.0, D, dtype=torch.float64)


def quadratic(theta: torch.Tensor) -> torch.Tensor:
    return ((theta - TARGET) ** 2).sum()


class Recorder:
    """A closure for SimulatedAnnealing that remembers the parameters and loss of every call."""

    def __init__(self, theta: torch.Tensor) -> None:
        self.theta, self.calls = theta, []

    def __call__(self) -> torch.Tensor:
        loss = quadratic(self.theta)
        self.calls.append((self.theta.detach().clone(), float(loss.detach())))
        return loss


def _run(steps: int, *, temperature: float, lr: float = 0.1, seed: int = 0, cooling: float = 1.0):
    theta = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    opt = SimulatedAnnealing([theta], lr=lr, temperature=temperature, cooling=cooling, seed=seed)
    rec = Recorder(theta)
    moves = []  # (current loss, proposal, proposal loss, parameters after the step)
    for _ in range(steps):
        opt.step(rec)
        (_, cur), (prop, new) = rec.calls[-2], rec.calls[-1]
        moves.append((cur, prop, new, theta.detach().clone()))
    return theta, opt, moves


def test_downhill_always_accepted_uphill_sometimes() -> None:
    _, _, moves = _run(400, temperature=0.05)
    downhill = [m for m in moves if m[2] <= m[0]]
    uphill = [m for m in moves if m[2] > m[0]]
    assert len(downhill) > 20 and len(uphill) > 20
    assert all(torch.equal(after, prop) for _, prop, _, after in downhill)
    taken = sum(torch.equal(after, prop) for _, prop, _, after in uphill)
    assert 0 < taken < len(uphill), "at T = 0.05 the Metropolis rule takes some uphill moves and refuses others"


def test_tiny_temperature_never_goes_uphill() -> None:
    theta, _, moves = _run(300, temperature=1e-300)
    for cur, prop, new, after in moves:
        if new > cur:
            assert not torch.equal(after, prop)
    losses = [quadratic(after).item() for *_, after in moves]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.1 * quadratic(torch.zeros(D, dtype=torch.float64)).item()


def test_loss_evals_counts_closure_calls() -> None:
    _, opt, _ = _run(37, temperature=1.0)
    assert opt.loss_evals == 74
    theta = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    other = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = SimulatedAnnealing([{"params": [theta]}, {"params": [other], "lr": 0.5}], temperature=1.0, cooling=0.9)
    calls = []
    for _ in range(5):
        opt.step(lambda: calls.append(1) or quadratic(theta) + (other**2).sum())
    assert opt.loss_evals == len(calls) == 2 * 2 * 5
    # each group cools on the optimizer's step count, not once per group and step
    assert sorted(s["step"] for s in opt.state.values()) == [5, 5]


def test_decreases_a_quadratic() -> None:
    theta, opt, _ = _run(400, temperature=1e-2, cooling=0.99)
    start = quadratic(torch.zeros(D, dtype=torch.float64)).item()
    assert quadratic(theta.detach()).item() < 0.05 * start
    assert opt.loss_evals == 800


def test_deterministic_with_seed() -> None:
    a, _, _ = _run(100, temperature=0.1, seed=3)
    b, _, _ = _run(100, temperature=0.1, seed=3)
    c, _, _ = _run(100, temperature=0.1, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_state_dict_resume_is_invisible() -> None:
    straight, _, _ = _run(80, temperature=0.1, cooling=0.97, seed=5)
    theta = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    opt = SimulatedAnnealing([theta], lr=0.1, temperature=0.1, cooling=0.97, seed=5)
    for _ in range(40):
        opt.step(lambda: quadratic(theta))
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    theta2 = theta.detach().clone().requires_grad_(True)
    opt2 = SimulatedAnnealing([theta2], lr=0.1, temperature=0.1, cooling=0.97, seed=999)
    opt2.load_state_dict(torch.load(buf))
    for _ in range(40):
        opt2.step(lambda: quadratic(theta2))
    assert torch.equal(theta2, straight)
    assert opt2.loss_evals == 160


def test_proposal_is_lr_times_standard_normal() -> None:
    """θ' = θ + η ξ with ξ drawn from the model's generator (per parameter, in order), then u for the decision."""
    lr = 0.3
    w, b = torch.randn(1, 3, 4, dtype=torch.float64), torch.randn(1, 1, 4, dtype=torch.float64)
    seen = []

    def loss_fn(ps):
        seen.append([p.clone() for p in ps])
        return torch.tensor([1.0 if len(seen) % 2 else 0.0], dtype=torch.float64)  # proposal always downhill

    w0, b0 = w.clone(), b.clone()
    anneal_step([w, b], loss_fn, {}, lr=lr, temperature=1.0, cooling=1.0, generators=[torch.Generator().manual_seed(4)])
    g = torch.Generator().manual_seed(4)
    xi_w, xi_b = (
        torch.randn(3, 4, generator=g, dtype=torch.float64),
        torch.randn(1, 4, generator=g, dtype=torch.float64),
    )
    assert torch.equal(seen[0][0], w0) and torch.equal(seen[1][0], w0 + lr * xi_w)
    assert torch.equal(seen[1][1], b0 + lr * xi_b)
    assert torch.equal(w, seen[1][0]) and torch.equal(b, seen[1][1])  # downhill: taken


def test_metropolis_acceptance_probability() -> None:
    """An uphill move of Δ = T ln 2 is accepted with probability exp(−Δ/T) = 1/2."""
    temperature = 0.3
    delta = temperature * math.log(2)
    state: dict = {}
    p = [torch.zeros(1, 2, dtype=torch.float64)]
    gen = [torch.Generator().manual_seed(11)]
    calls = iter(range(10**9))
    loss_fn = lambda ps: torch.tensor([0.0 if next(calls) % 2 == 0 else delta], dtype=torch.float64)  # noqa: E731
    n = 4000
    for _ in range(n):
        anneal_step(p, loss_fn, state, lr=0.1, temperature=temperature, cooling=1.0, generators=gen)
    rate = int(state["accepted"][0]) / n
    assert abs(rate - 0.5) < 5 * math.sqrt(0.25 / n)
    assert state["loss_evals"] == 2 * n and state["step"] == n


def test_cooling_lowers_acceptance() -> None:
    """T_t = T0 c^t: the same uphill move becomes ever less likely to be taken."""
    state: dict = {}
    p = [torch.zeros(1, 2, dtype=torch.float64)]
    gen = [torch.Generator().manual_seed(2)]
    calls = iter(range(10**9))
    loss_fn = lambda ps: torch.tensor([0.0 if next(calls) % 2 == 0 else 1.0], dtype=torch.float64)  # noqa: E731
    taken = []
    for _ in range(600):
        before = int(state.get("accepted", torch.zeros(1, dtype=torch.int64))[0])
        anneal_step(p, loss_fn, state, lr=0.1, temperature=5.0, cooling=0.99, generators=gen)
        taken.append(int(state["accepted"][0]) - before)
    assert sum(taken[:100]) > 60 and sum(taken[-200:]) == 0  # exp(-1/5)≈0.82 early; T≈0.012 late


def _pack_losses(targets: list[torch.Tensor]):
    tw, tb = torch.stack([t[0] for t in targets]), torch.stack([t[1] for t in targets])

    def loss_fn(ps):
        w, b = ps
        return ((w - tw) ** 2).sum(dim=(1, 2)) + ((b - tb) ** 2).sum(dim=(1, 2))

    return loss_fn


def test_k_stacked_equals_k_separate_runs() -> None:
    k = 3
    g = torch.Generator().manual_seed(0)
    targets = [
        (torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(1, 4, generator=g, dtype=torch.float64))
        for _ in range(k)
    ]
    lr, temp, cool = [0.05, 0.2, 0.1], [0.01, 1.0, 0.1], [0.99, 0.999, 0.9]
    seeds = [10, 11, 12]

    w, b = torch.zeros(k, 3, 4, dtype=torch.float64), torch.zeros(k, 1, 4, dtype=torch.float64)
    state: dict = {}
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    vec = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    for _ in range(200):
        out = anneal_step(
            [w, b], _pack_losses(targets), state, lr=vec(lr), temperature=vec(temp), cooling=vec(cool), generators=gens
        )
    assert out.shape == (k,)
    for i in range(k):
        wi, bi = torch.zeros(1, 3, 4, dtype=torch.float64), torch.zeros(1, 1, 4, dtype=torch.float64)
        st: dict = {}
        gi = [torch.Generator().manual_seed(seeds[i])]
        for _ in range(200):
            anneal_step(
                [wi, bi], _pack_losses([targets[i]]), st, lr=lr[i], temperature=temp[i], cooling=cool[i], generators=gi
            )
        assert not torch.equal(wi, torch.zeros_like(wi))
        assert torch.allclose(w[i], wi[0], rtol=1e-12, atol=0) and torch.allclose(b[i], bi[0], rtol=1e-12, atol=0)
        assert int(state["accepted"][i]) == int(st["accepted"][0])


def test_invalid_arguments() -> None:
    p = [torch.zeros(2, requires_grad=True)]
    for kw in (dict(lr=0.0), dict(temperature=-1.0), dict(cooling=1.5), dict(cooling=0.0)):
        with pytest.raises(ValueError):
            SimulatedAnnealing(p, **kw)


def _trajectory(scale: float, relative: bool, steps: int = 300) -> torch.Tensor:
    theta = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    opt = SimulatedAnnealing([theta], lr=0.1, temperature=0.05, cooling=1.0, relative_temperature=relative)
    for _ in range(steps):
        opt.step(lambda: scale * quadratic(theta))
    return theta.detach().clone()


def test_relative_temperature_makes_the_walk_independent_of_the_loss_scale() -> None:
    """T0 = temperature x first loss: the Metropolis rule compares Δ/T, and both scale with the loss, so the same
    seed walks the same way on L and on 1000·L (with an absolute T0 it does not)."""
    assert torch.equal(_trajectory(1.0, relative=True), _trajectory(1000.0, relative=True))
    assert not torch.equal(_trajectory(1.0, relative=False), _trajectory(1000.0, relative=False))


def test_relative_temperature_is_the_absolute_one_times_the_first_loss() -> None:
    first = float(quadratic(torch.zeros(D, dtype=torch.float64)))
    theta = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    opt = SimulatedAnnealing([theta], lr=0.1, temperature=0.05 * first, cooling=1.0)
    for _ in range(300):
        opt.step(lambda: quadratic(theta))
    assert torch.equal(theta.detach(), _trajectory(1.0, relative=True))


def test_passing_the_last_steps_loss_back_takes_the_same_steps_with_one_evaluation_each() -> None:
    """On a batch that does not change, the loss a step ends at is the next step's current loss: handing it back
    (`current=`) gives the same walk bit for bit, with one loss evaluation per step instead of two."""
    k = 3
    g = torch.Generator().manual_seed(7)
    targets = [
        (torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(1, 4, generator=g, dtype=torch.float64))
        for _ in range(k)
    ]
    vec = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    kw = dict(lr=vec([0.05, 0.2, 0.1]), temperature=vec([0.01, 1.0, 0.1]), cooling=vec([0.99, 0.999, 0.9]))

    def walk(reuse: bool):
        w, b = torch.zeros(k, 3, 4, dtype=torch.float64), torch.zeros(k, 1, 4, dtype=torch.float64)
        state: dict = {}
        gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
        calls, losses, current = [0], [], None
        inner = _pack_losses(targets)

        def loss_fn(ps):
            calls[0] += 1
            return inner(ps)

        for _ in range(300):
            out = anneal_step([w, b], loss_fn, state, generators=gens, relative_temperature=True, current=current, **kw)
            losses.append(out.clone())
            current = out if reuse else None
        return w, b, torch.stack(losses), state, calls[0]

    w0, b0, l0, s0, n0 = walk(reuse=False)
    w1, b1, l1, s1, n1 = walk(reuse=True)
    assert torch.equal(w0, w1) and torch.equal(b0, b1) and torch.equal(l0, l1)
    assert torch.equal(s0["accepted"], s1["accepted"]) and int(s1["accepted"].min()) > 10  # it did move
    assert (n0, n1) == (600, 301) and (s0["loss_evals"], s1["loss_evals"]) == (600, 301)


def _anneal_runs(tmp_path, *extra: str) -> list[dict]:
    from conftest import make_cfg

    common = ["optimizer=anneal", "data=teacher", "data.n_samples=300", "batch_size=full", "epochs=200"]
    common += ["model.hidden=[4]", "log_every=10", "wandb.mode=disabled", "dtype=float64", *extra]
    # a random walk (every move taken) of lr 30 diverges: the pack shrinks mid-run, the others must not notice
    return [
        make_cfg(tmp_path, *common, *v)
        for v in (["lr=0.03"], ["lr=0.1", "seed=1"], ["lr=30", "seed=2", "optimizer.temperature=1e9"])
    ]


def test_the_pack_keeps_the_current_loss_for_a_fixed_full_batch_and_walks_the_same(tmp_path, monkeypatch) -> None:
    """Full batch in a fixed order: the engine's annealing evaluates only each proposal (1 per step, counted so in
    the summary) and every model's history is the one it has when both points are evaluated every step."""
    from store_helpers import history, summary

    from sweep import updaters
    from sweep.runner import train_runs

    cached = _anneal_runs(tmp_path / "cached", "sampling=shuffle_once")
    train_runs(cached, pack=len(cached), progress=False)
    init = updaters.Anneal.__init__

    def never_reuse(self, *a, **kw):
        init(self, *a, **kw)
        self.same_batch, self.loss_evals_per_step = False, 2

    monkeypatch.setattr(updaters.Anneal, "__init__", never_reuse)
    both = _anneal_runs(tmp_path / "both", "sampling=shuffle_once")
    train_runs(both, pack=len(both), progress=False)
    assert [summary(c)["status"] for c in cached] == ["done", "done", "diverged"]
    for c, b in zip(cached, both):
        hc, hb = history(c), history(b)
        assert len(hc) > 20
        for col in ("train_loss", "val_loss", "test_loss"):
            np.testing.assert_array_equal(hc[col], hb[col], err_msg=col)
    for c, b in zip(cached[:2], both[:2]):
        assert summary(c)["loss_evals"] == summary(c)["step"] == 200 and summary(b)["loss_evals"] == 400


def test_a_batch_that_changes_each_step_evaluates_both_points(tmp_path) -> None:
    from store_helpers import summary

    from sweep.runner import train_runs

    runs = _anneal_runs(tmp_path, "sampling=shuffle_each_epoch")[:1]  # a full batch, permuted every epoch
    train_runs(runs, progress=False)
    assert summary(runs[0])["loss_evals"] == 2 * 200
