"""A pack of K MLPs with identical shapes, stored stacked: every parameter has a leading K axis.

Parameters are the list [W1, b1, W2, b2, ...] with W [K, fan_in, fan_out] and b [K, 1, fan_out]; the forward pass
is one batched matmul per layer, so K small models cost about one bigger model's kernel launches. A single run is
K = 1. Training takes its gradients from `losses_and_grads`: backpropagation written out for this one model
family (two batched matmuls per layer, autograd's own activation-derivative kernels), with no graph recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sweep.init import init_weight

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
}


_IN_PLACE: dict[str, Callable[[Tensor], Tensor]] = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}


def layer_sizes(num_inputs: int, hidden: Sequence[int], num_outputs: int) -> list[int]:
    return [num_inputs, *hidden, num_outputs]


def init_params(
    sizes: Sequence[int],
    inits: Sequence[dict],
    generators: Sequence[torch.Generator],
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> list[Tensor]:
    """Stacked parameters for len(inits) models; model k is drawn from generators[k] with scheme inits[k].

    inits[k] holds `name`, `std`, `scale`, `bias` (see InitConfig). Drawing each model from its own generator
    makes model k's weights independent of which pack it is in.
    """
    params: list[Tensor] = []
    per_model: list[list[Tensor]] = []
    for spec, gen in zip(inits, generators):
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers.append(
                init_weight(
                    spec["name"], fan_in, fan_out, generator=gen, std=spec["std"], scale=spec["scale"], dtype=dtype
                )
            )
            layers.append(torch.full((1, fan_out), float(spec["bias"]), dtype=dtype))
        per_model.append(layers)
    for i in range(len(per_model[0])):
        params.append(torch.stack([m[i] for m in per_model]).to(device).requires_grad_(True))
    return params


def forward(params: Sequence[Tensor], x: Tensor, activation: str) -> Tensor:
    """Outputs [K, B, out] for inputs x [K, B, in] (or [B, in], shared by all K models)."""
    return _forward(params, x, activation)[0]


def _forward(params: Sequence[Tensor], x: Tensor, activation: str) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The output, each layer's input (x first) and, for gelu, each hidden layer's pre-activation: what backward
    needs."""
    act = ACTIVATIONS[activation]
    inputs, pre = [x], []
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        h = inputs[-1]
        # bmm then an in-place bias add, not baddbmm: faster on the CPU (benchmarks/README.md, "Batched layers")
        z = (torch.bmm(h, w) if h.ndim == 3 else torch.matmul(h, w)).add_(b)
        if i == n_layers - 1:
            return z, inputs, pre
        if activation == "gelu":  # its derivative needs its input; the others' need only their output
            pre.append(z)
            inputs.append(act(z))
        else:
            inputs.append(_IN_PLACE[activation](z))
    raise ValueError("an MLP has at least one layer")


def _nll(out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-example cross-entropy [K, B] and the log-probabilities [K, B, C] of logits out [K, B, C].
    log_softmax over the class axis of the transposed view: with the examples innermost torch's CPU kernel
    vectorises over them (measured on [64, 64, 10]: 41 us, against 325 us along the last axis of 10)."""
    logp = torch.log_softmax(out.transpose(-1, -2), -2).transpose(-1, -2)
    return -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1), logp


def per_model_loss(out: Tensor, y: Tensor, task: str) -> Tensor:
    """Mean loss of each model, [K]: cross-entropy for classification, MSE for regression."""
    k, b = out.shape[0], out.shape[1]
    if task == "classification":
        return _nll(out, y.expand(k, b) if y.ndim == 1 else y)[0].mean(1)
    y = y.expand(k, *y.shape) if y.ndim == 2 else y
    return (out - y).pow(2).mean(dim=(1, 2))


@torch.no_grad()
def losses_and_grads(
    params: Sequence[Tensor], x: Tensor, y: Tensor, activation: str, task: str
) -> tuple[Tensor, list[Tensor]]:
    """The [K] losses of each model on its own batch (x [K, B, in], y [K, B] or [K, B, out]) and the gradients
    of each model's loss with respect to its parameters, stacked like `params`: backpropagation written out.

    The same numbers as autograd through `forward` and `per_model_loss` up to rounding (tests/test_model.py),
    and a pack of 64 small MLPs steps 1.13-1.15x faster on the CPU (benchmarks/bench_pack.py --steps-only: no
    graph is recorded, the loss's gradient is formed directly, the bias is added in place). Model k's gradient
    depends only on model k, so it is the same whatever pack it trains in."""
    out, inputs, pre = _forward(params, x, activation)
    b = out.shape[1]
    if task == "classification":
        nll, logp = _nll(out, y)
        losses = nll.mean(1)
        g = logp.exp_()  # d mean_b nll / d out = (softmax - onehot) / B
        g.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(g[..., :1], -1.0))
        g.mul_(1.0 / b)
    else:
        diff = out - y
        losses = diff.pow(2).mean(dim=(1, 2))
        g = diff.mul_(2.0 / (b * out.shape[2]))
    n_layers = len(params) // 2
    grads: list[Tensor] = [None] * len(params)  # type: ignore[list-item]
    for i in reversed(range(n_layers)):
        grads[2 * i] = torch.bmm(inputs[i].transpose(1, 2), g)
        grads[2 * i + 1] = g.sum(1, keepdim=True)
        if i:
            g = _activation_backward(torch.bmm(g, params[2 * i].transpose(1, 2)), inputs[i], pre, i, activation)
    return losses, grads


def _activation_backward(g: Tensor, out: Tensor, pre: list[Tensor], i: int, activation: str) -> Tensor:
    """The gradient through layer i's input activation (its output `out`; gelu: its input pre[i - 1]), by
    autograd's own kernels."""
    if activation == "relu":
        return torch.ops.aten.threshold_backward(g, out, 0.0)
    if activation == "tanh":
        return torch.ops.aten.tanh_backward(g, out)
    if activation == "sigmoid":
        return torch.ops.aten.sigmoid_backward(g, out)
    return torch.ops.aten.gelu_backward(g, pre[i - 1])


@dataclass(frozen=True)
class Batch:
    """What one step scores a pack on: each model's own batch x [K, B, in] with labels y [K, B] (classification)
    or targets y [K, B, out] (regression)."""

    x: Tensor
    y: Tensor
    activation: str
    task: str

    def losses(self, params: Sequence[Tensor]) -> Tensor:
        """The [K] losses of stacked parameters (a forward pass only: annealing's proposals)."""
        return per_model_loss(forward(params, self.x, self.activation), self.y, self.task)

    def losses_and_grads(self, params: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """The [K] losses and each model's gradient, stacked like params (see `losses_and_grads`)."""
        return losses_and_grads(params, self.x, self.y, self.activation, self.task)


def accuracy(out: Tensor, y: Tensor) -> Tensor:
    """Fraction of correct argmax predictions of each model, [K]."""
    return (out.argmax(-1) == y).to(out.dtype).mean(-1)
