"""Shared benchmark helpers: the machine's own matmul roofline and config composition."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module


def matmul_flops(n: int = 1024, seconds: float = 2.0) -> float:
    """Sustained fp32 FLOP/s of an n×n×n matmul on this machine (the roofline to compare training with)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def make_cfg(out_dir: Path, *overrides: str) -> dict:
    from sweep.compose import resolved

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"out_dir={out_dir}", *overrides])
    return resolved(cfg)


def fake_mnist(root: Path, n_train: int = 60000, n_test: int = 10000, seed: int = 0) -> Path:
    """Random MNIST-shaped IDX files (real format, random pixels): throughput does not depend on content."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return root


def params_of(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
