"""Weight initialisations, as the lecture names them, built on torch.nn.init.

A weight here is stored [fan_in, fan_out] (the MLP computes x @ W); torch.nn.init reasons about [fan_out, fan_in],
so each scheme fills the transposed shape and hands back its transpose.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

_SCHEMES: dict[str, Callable[[Tensor, float, torch.Generator], object]] = {
    # variance 1/fan_in: the lecture's recommendation, keeps activations' scale through linear layers
    "lecun_normal": lambda w, std, g: torch.nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g),
    # variance 2/fan_in: compensates ReLU zeroing half the units
    "he_normal": lambda w, std, g: torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g),
    # variance 2/(fan_in + fan_out)
    "xavier_normal": lambda w, std, g: torch.nn.init.xavier_normal_(w, generator=g),
    "xavier_uniform": lambda w, std, g: torch.nn.init.xavier_uniform_(w, generator=g),
    "orthogonal": lambda w, std, g: torch.nn.init.orthogonal_(w, generator=g),
    # a fixed std regardless of width: what goes wrong without scaling
    "normal": lambda w, std, g: torch.nn.init.normal_(w, std=std, generator=g),
    # every hidden unit identical: the symmetry problem
    "zeros": lambda w, std, g: torch.nn.init.zeros_(w),
}
INITS = tuple(_SCHEMES)


def init_weight(
    scheme: str,
    fan_in: int,
    fan_out: int,
    *,
    generator: torch.Generator,
    std: float = 0.01,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A [fan_in, fan_out] weight drawn by `scheme` (one of INITS) and multiplied by `scale`. CPU, float64 draw."""
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)
    _SCHEMES[scheme](w, std, generator)
    return (w.T * scale).to(dtype).contiguous()
