"""The pack's training step compiled by `torch.compile` (`compile=true`): the same step as `Trainer._step`,
with its elementwise work fused into generated kernels by TorchInductor.

On this project's 2-core CPU a pack of 64 digits MLPs steps 1.2-1.3x faster compiled than the plain step
(benchmarks/bench_pack.py --steps-only) but the first compile costs 4-20 s (and some more when the pack shrinks),
so it pays for runs of thousands of steps, not for the short course studies; it is off by default. On CUDA the
captured graph (sweep/graph_step.py) comes first; compiling applies where no graph does. Fused kernels round
differently from the plain step: a compiled run agrees with a plain one to float32 rounding, not bit for bit,
and a model's numbers may then depend on its pack's size. Resume stays deterministic (the same kernels are
generated again).

Only full batches of steps that record no grad norms are compiled (one shape, one graph); an epoch's smaller
last batch and the sync steps take the plain step. Where compiling fails (no C++ compiler on a compute node,
an unsupported backend) the pack says so once and goes on with the plain step: nothing is lost.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from torch import Tensor

Step = Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]]


class CompiledStep:
    """`step(idx, lr)` compiled on first use; `__call__` returns None when compiling failed (use the plain step)."""

    def __init__(self, step: Step) -> None:
        # fullgraph: one graph or an error before anything ran (a step half-run, then run plain, would update
        # some layers twice); dynamic=None: K turns symbolic once the pack shrinks, so that costs one recompile
        self.fn: Step | None = torch.compile(step, fullgraph=True, dynamic=None)

    def __call__(self, idx: Tensor, lr: Tensor) -> tuple[Tensor, Tensor | None] | None:
        if self.fn is None:
            return None
        try:
            return self.fn(idx, lr)
        except torch._dynamo.exc.TorchDynamoException as e:  # compiling failed, before the step ran
            print(
                f"sweep: compile=true: torch.compile failed ({type(e).__name__}); plain steps instead", file=sys.stderr
            )
            self.fn = None
            return None
