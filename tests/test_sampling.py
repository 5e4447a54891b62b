"""sweep.sampling: the three readings of SGD's data order, each a pure function of (seed, epoch)."""

from __future__ import annotations

import pytest
import torch

from sweep.sampling import SAMPLINGS, epoch_order, generator, steps_per_epoch

CPU = torch.device("cpu")
N = 500


def order(sampling: str, epoch: int, seeds=(0,), n: int = N) -> torch.Tensor:
    out = epoch_order(sampling, n, list(seeds), epoch, CPU)
    assert out.shape == (len(seeds), n) and out.dtype == torch.int64 and out.device == CPU
    return out


def is_permutation(row: torch.Tensor, n: int = N) -> bool:
    return torch.equal(row.sort().values, torch.arange(n))


def test_shuffle_each_epoch() -> None:
    epochs = [order("shuffle_each_epoch", e)[0] for e in range(5)]
    assert all(is_permutation(r) for r in epochs)
    assert not torch.equal(epochs[0], torch.arange(N)), "not shuffled"
    assert len({tuple(r.tolist()) for r in epochs}) == 5, "each epoch has its own order"


def test_shuffle_once() -> None:
    epochs = [order("shuffle_once", e)[0] for e in range(5)]
    assert is_permutation(epochs[0]) and not torch.equal(epochs[0], torch.arange(N))
    assert all(torch.equal(r, epochs[0]) for r in epochs)
    # the one permutation is shuffle_each_epoch's first
    assert torch.equal(epochs[0], order("shuffle_each_epoch", 0)[0])


def test_with_replacement() -> None:
    epochs = [order("with_replacement", e)[0] for e in range(5)]
    for r in epochs:
        assert int(r.min()) >= 0 and int(r.max()) < N
        # n draws from n: about n(1 − 1/e) ≈ 316 distinct, so repeats and omissions
        assert 0.55 * N < len(r.unique()) < 0.72 * N
    assert len({tuple(r.tolist()) for r in epochs}) == 5
    counts = torch.bincount(torch.cat(epochs), minlength=N)
    assert int(counts.min()) >= 0 and float(counts.float().mean()) == 5.0
    assert int((counts == 0).sum()) > 0  # some example missed in all five epochs: Poisson(5) gives ~0.7% zeros
    # uniform over all of 0..n-1: every example is drawn within 20 epochs, none far more often than others
    many = torch.bincount(order("with_replacement", 0, seeds=range(20)).flatten(), minlength=N)
    assert int(many.min()) > 0 and int(many.max()) < 45  # Poisson(20): P(0) ≈ 2e-9, P(≥ 45) ≈ 1e-6


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_deterministic_from_seed_and_epoch(sampling: str) -> None:
    assert torch.equal(order(sampling, 3, seeds=[7]), order(sampling, 3, seeds=[7]))
    assert not torch.equal(order(sampling, 3, seeds=[7]), order(sampling, 3, seeds=[8]))
    # no hidden global state: torch's global RNG does not matter
    a = order(sampling, 2, seeds=[7])
    torch.manual_seed(12345)
    torch.rand(10)
    assert torch.equal(a, order(sampling, 2, seeds=[7]))


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_k_rows_equal_separate_calls(sampling: str) -> None:
    seeds = [0, 1, 2, 3]
    pack = order(sampling, 4, seeds=seeds)
    for k, s in enumerate(seeds):
        assert torch.equal(pack[k], order(sampling, 4, seeds=[s])[0])
    assert not torch.equal(pack[0], pack[1])
    # a model's order does not depend on its pack-mates or its position in the pack
    assert torch.equal(order(sampling, 4, seeds=[3, 0])[0], pack[3])


def test_generator_streams_are_independent() -> None:
    draw = lambda *a: torch.rand(5, generator=generator(*a))  # noqa: E731
    assert torch.equal(draw(0, 1, 2), draw(0, 1, 2))
    assert len({tuple(draw(*a).tolist()) for a in [(0, 1, 2), (0, 2, 1), (1, 1, 2), (0, 1, 3), (0,)]}) == 5


@pytest.mark.parametrize("n,b,want", [(100, 10, 10), (101, 10, 11), (5, 10, 1), (64, 64, 1), (1, 1, 1)])
def test_steps_per_epoch(n: int, b: int, want: int) -> None:
    assert steps_per_epoch(n, b) == want
