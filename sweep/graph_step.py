"""The pack's training step captured as one CUDA graph: the same step as `Trainer._step`, replayed.

A step of K small MLPs launches ~100 tiny kernels; on a GPU their launch cost (~10 us each) is the whole step
(measured on an H200: 1.2-1.5 ms per step whatever K up to 1,024). Captured once, the step (batch gather,
forward, backward, grad norms, optimizer update) is replayed with one launch; the host copies in this step's
batch indices and learning rates and reads losses only at sync points, as before.

It is the same maths on the same kernels, so it is bit-identical to the plain step (checked by the `gpu` tests
and `make gpu-check`). It is also checked where it runs: every graph's first replay is taken both ways from the
same state (`replay_checked`), and a pack whose replay differs from its plain step by a single bit says so in
one line and trains with the plain step. It applies where a step has no host-side state that changes from step
to step (an optimizer spec's `graph_ready` says when; sweep/updaters.py asks it):

- the scratch update of the SGD family (sgd, gd, momentum, nesterov), once every momentum buffer exists (the
  first step creates them eagerly), and of Adam(W), RMSprop and Adagrad, whose step count a pack keeps on the
  device (optim.base.step_count) so their bias correction and lr decay are replayed too; annealing (CPU
  generators), optimizer.impl=torch and a student's optimizer take the plain step;
- full batches only: the smaller last batch of an epoch takes the plain step;
- a fixed pack: when models leave it (divergence), the graph is captured again for the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class CapturedStep:
    """One captured training step for a fixed pack and batch shape. Call `replay(idx, lr)` instead of the step.

    `step_fn(idx, lr)` must be the plain step written with in-place updates of fixed tensors (parameters and
    optimizer state keep their addresses), returning (losses [K], grad norms [K] or None)."""

    def __init__(
        self,
        step_fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]],
        idx: Tensor,
        lr: Tensor,
        warmup: Callable[[Tensor], None],
    ) -> None:
        self.idx = idx.clone()
        self.lr = lr.clone()
        self.graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            warmup(self.idx)  # first use of cuBLAS etc. on this stream, outside the capture; changes no state
        torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(self.graph, stream=stream):
            self.loss, self.norm = step_fn(self.idx, self.lr)  # recorded, not run
        self.shape = tuple(idx.shape)

    def fits(self, idx: Tensor) -> bool:
        return tuple(idx.shape) == self.shape

    def replay(self, idx: Tensor, lr: Tensor) -> tuple[Tensor, Tensor | None]:
        self.idx.copy_(idx)
        self.lr.copy_(lr)
        self.graph.replay()
        return self.loss, self.norm


def replay_checked(
    graph: CapturedStep,
    plain: Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]],
    idx: Tensor,
    lr: Tensor,
    live: Callable[[], list[Tensor]],
) -> tuple[tuple[Tensor, Tensor | None], str | None]:
    """Take one step both ways from the same state: `plain(idx, lr)`, then, with every tensor of `live()` (what a
    step changes in place: weights, optimizer state) put back, `graph.replay(idx, lr)`. Returns the step's
    (losses, grad norms) and None when the two agree bit for bit; else the plain step's outputs, its state left
    in place, and one line on where they differ. Costs one extra step and a copy of the state, once per graph."""
    before = [t.clone() for t in live()]
    loss, norm = plain(idx, lr)
    want = [t.clone() for t in (loss, *([] if norm is None else [norm]), *live())]
    _put(live(), before)
    g_loss, g_norm = graph.replay(idx, lr)
    got = [g_loss, *([] if g_norm is None else [g_norm]), *live()]
    names = ["the losses", *([] if norm is None else ["the grad norms"])]
    names += [f"state tensor {i}" for i in range(len(want) - len(names))]
    differ = [(n, a, b) for n, a, b in zip(names, want, got) if not _same_bits(a, b)]
    if len(got) == len(want) and not differ:
        return (g_loss, g_norm), None
    _put(live(), want[len(want) - len(before) :])
    if not differ:
        return (loss, norm), "the replay and the plain step return different outputs"
    name, a, b = differ[0]
    gap = (a.double() - b.double()).abs().nan_to_num(nan=float("inf")).max().item()
    return (loss, norm), f"{name} differ{'s' if name.startswith('state') else ''} (max |difference| {gap:.3g})"


@torch.no_grad()  # the weights are leaves that require grad
def _put(live: list[Tensor], values: list[Tensor]) -> None:
    for t, v in zip(live, values):
        t.copy_(v)


def _same_bits(a: Tensor, b: Tensor) -> bool:
    """Equal bit for bit (NaN where NaN, -0.0 apart from 0.0): what "the same step" means here."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(a), _bits(b))


def _bits(t: Tensor) -> Tensor:
    t = t.detach().contiguous().reshape(-1)  # 0-dim (a step count) too
    return t.view(torch.uint8) if t.is_floating_point() or t.is_complex() else t
