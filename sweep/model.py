"""A pack of K MLPs with identical shapes, stored stacked: every parameter has a leading K axis.

Parameters are the list [W1, b1, W2, b2, ...] with W [K, fan_in, fan_out] and b [K, 1, fan_out]; the forward pass
is one batched matmul per layer (baddbmm), so K small models cost about one bigger model's kernel launches.
A single run is K = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    act = ACTIVATIONS[activation]
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        h = torch.baddbmm(b, h, w) if h.ndim == 3 else torch.matmul(h, w) + b
        if i < n_layers - 1:
            h = act(h)
    return h


def per_model_loss(out: Tensor, y: Tensor, task: str) -> Tensor:
    """Mean loss of each model, [K]: cross-entropy for classification, MSE for regression."""
    k, b = out.shape[0], out.shape[1]
    if task == "classification":
        y = y.expand(k, b) if y.ndim == 1 else y
        return F.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b).mean(1)
    y = y.expand(k, *y.shape) if y.ndim == 2 else y
    return (out - y).pow(2).mean(dim=(1, 2))


def accuracy(out: Tensor, y: Tensor) -> Tensor:
    """Fraction of correct argmax predictions of each model, [K]."""
    return (out.argmax(-1) == y).to(out.dtype).mean(-1)
