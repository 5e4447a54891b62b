"""The order in which each model sees the training set: the lecture's three readings of SGD.

An epoch's order is a pure function of (seed, epoch): resuming at any step needs only the step index, and a
model's order does not depend on which pack it is trained in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

SAMPLINGS = ("shuffle_each_epoch", "shuffle_once", "with_replacement")


def generator(seed: int, *stream: int) -> torch.Generator:
    """A torch CPU generator for one independent random stream of a seed (init, data order, annealing...)."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


DATA_STREAM = 1


def epoch_order(sampling: str, n: int, seeds: Sequence[int], epoch: int, device: torch.device) -> Tensor:
    """Indices [K, n] of the examples model k visits in `epoch`, batches being consecutive slices.

    shuffle_each_epoch: a fresh permutation per epoch (each example exactly once per epoch).
    shuffle_once: the permutation of epoch 0, repeated.
    with_replacement: n independent uniform draws per epoch.
    """
    rows = []
    for seed in seeds:
        if sampling == "with_replacement":
            rows.append(torch.randint(n, (n,), generator=generator(seed, DATA_STREAM, epoch)))
        else:
            e = 0 if sampling == "shuffle_once" else epoch
            rows.append(torch.randperm(n, generator=generator(seed, DATA_STREAM, e)))
    return torch.stack(rows).to(device)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch; the last one is smaller when batch_size does not divide n."""
    return -(-n // batch_size)
