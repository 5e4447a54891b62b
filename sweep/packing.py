"""Which configs train together as one pack, and how many models a pack holds.

Configs pack together when they share data, shapes, step count and the structure of their update (optimizer
family and flags); everything else (lr, seed, optimizer and schedule knobs, init) travels as K-vectors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch

from sweep.data import cached_splits
from sweep.device import resolve_device
from sweep.optim.registry import spec_of

# the most models per pack that `pack=auto` chooses: beyond these, batching stops paying (bench_pack.py)
AUTO_PACK_CPU, AUTO_PACK_GPU = 64, 1024


def pack_key(cfg: dict) -> str:
    """Configs with equal keys can be trained as one pack: same data, shapes, steps, optimizer family and flags."""
    o = cfg["optimizer"]
    shared = {
        k: cfg.get(k)
        for k in (
            "data",
            "model",
            "batch_size",
            "epochs",
            "sampling",
            "dtype",
            "device",
            "diverge_factor",
            "log_every",
            "checkpoint_every",
            "cuda_graph",
            "compile",
        )
    }
    spec = spec_of(o["name"])
    shared.update(family=spec.family, impl=o["impl"], flags=spec.structure(o))
    if o["name"] == "custom":  # a batched update function shares its kwargs across the pack
        shared.update(custom=[o.get("cls"), o.get("kwargs")])
    return json.dumps(shared, sort_keys=True, default=str)


def bytes_per_model(cfg: dict, num_inputs: int, num_outputs: int, batch: int) -> int:
    """A generous estimate of one model's training memory: params ×4 (param, grad, 2 optimizer moments) plus
    activations (×3: those the backward pass keeps, their gradients, gelu's pre-activations) and its batch."""
    sizes = [num_inputs, *cfg["model"]["hidden"], num_outputs]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    acts = batch * sum(sizes) * 3
    item = 8 if cfg["dtype"] == "float64" else 4
    return (4 * params + acts) * item


def auto_pack_size(cfg: dict, num_inputs: int, num_outputs: int, batch: int) -> int:
    """The most models that fit half the GPU's free memory (a quarter of RAM on a CPU), capped where batching
    stops paying."""
    device = resolve_device(cfg["device"])
    per = bytes_per_model(cfg, num_inputs, num_outputs, batch)
    if device.type == "cuda" and not torch.cuda.is_available():
        return AUTO_PACK_GPU  # planned on a machine without the GPU; the task re-plans where it runs
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, cap = free // 2, AUTO_PACK_GPU
    else:
        budget, cap = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4, AUTO_PACK_CPU
    return max(1, min(cap, budget // max(per, 1)))


def plan_packs(cfgs: Sequence[dict], pack: int | str) -> list[list[dict]]:
    """Group configs that can share a pack (same pack_key), in their given order, in chunks of at most `pack`."""
    groups: dict[str, list[dict]] = {}
    for c in cfgs:
        groups.setdefault(pack_key(c), []).append(c)
    packs = []
    for members in groups.values():
        size = pack if isinstance(pack, int) else _auto_size(members[0])
        packs.extend(members[i : i + size] for i in range(0, len(members), size))
    return packs


def _auto_size(cfg: dict) -> int:
    data = cached_splits(cfg["data"])
    n = data.x_train.shape[0]
    batch = n if cfg["batch_size"] == "full" else min(int(cfg["batch_size"]), n)
    return auto_pack_size(cfg, data.num_inputs, data.num_outputs, batch)
