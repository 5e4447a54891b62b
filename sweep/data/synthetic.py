"""Small generated datasets: `teacher` and `steps` (regression), `spirals` (classification).

Contract: every array is a pure function of the config (seed, n_samples, noise, and for the
teacher input_dim/teacher_width); the same config gives bit-identical tensors on every call.
Each dataset draws from its own numpy streams (`config.rng`), separate from the split stream.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import DataConfig, Dataset, check_dtype, rng, split_indices, to_dataset

# Stream ids under `config.rng`; 0 is the train/test split.
_TEACHER_PARAMS, _TEACHER_INPUTS, _TEACHER_NOISE, _TEACHER_REFERENCE = 1, 2, 3, 4
_STEPS_DATA, _SPIRALS_DATA = 5, 6

# Fixed so that plots of fits from different seeds/runs are comparable.
STEP_EDGES = np.array([-0.6, -0.2, 0.2, 0.6])
STEP_LEVELS = np.array([0.0, 1.0, -0.5, 0.75, -1.0])
SPIRAL_TURNS = 2.0


def steps_target(x: np.ndarray) -> np.ndarray:
    """The noise-free piecewise-constant target of `steps` (jumps at STEP_EDGES)."""
    return STEP_LEVELS[np.searchsorted(STEP_EDGES, x, side="right")]


def _split(
    cfg: DataConfig,
    task: str,
    x: np.ndarray,
    y: np.ndarray,
    num_outputs: int,
    device: torch.device | str,
    dtype: torch.dtype,
) -> Dataset:
    train, test = split_indices(len(x), cfg.test_fraction, cfg.seed)
    return to_dataset(cfg.name, task, x[train], y[train], x[test], y[test], num_outputs, device, dtype)


def load_teacher(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    """Regression onto a random tanh MLP `input_dim -> teacher_width -> 1`.

    Inputs are standard Gaussian. The teacher is rescaled so its output has mean ~0 and std ~1,
    hence `noise` is the noise-to-signal std ratio. The teacher depends only on (seed,
    input_dim, teacher_width) and the samples' streams are prefix-stable, so growing n_samples
    adds points to the same problem instead of drawing a new one.
    """
    check_dtype(dtype)
    n = 2000 if cfg.n_samples is None else cfg.n_samples
    d, h = cfg.input_dim, cfg.teacher_width
    p = rng(cfg.seed, _TEACHER_PARAMS)
    # Pre-activations ~ N(0, 1): tanh is then neither linear nor saturated.
    w1 = p.standard_normal((d, h)) / np.sqrt(d)
    b1 = 0.5 * p.standard_normal(h)
    w2 = p.standard_normal((h, 1)) / np.sqrt(h)

    def hidden(x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ w1 + b1) @ w2

    # Normalise on a fixed reference sample rather than on the data, so the teacher is the same
    # function whatever n_samples is.
    ref = hidden(rng(cfg.seed, _TEACHER_REFERENCE).standard_normal((8192, d)))
    mean, std = ref.mean(), ref.std()

    x = rng(cfg.seed, _TEACHER_INPUTS).standard_normal((n, d))
    y = (hidden(x) - mean) / std + cfg.noise * rng(cfg.seed, _TEACHER_NOISE).standard_normal((n, 1))
    return _split(cfg, "regression", x, y, 1, device, dtype)


def load_steps(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    """Universal-approximation demo: x ~ U[-1, 1], y = steps_target(x) + noise * N(0, 1)."""
    check_dtype(dtype)
    n = 1000 if cfg.n_samples is None else cfg.n_samples
    g = rng(cfg.seed, _STEPS_DATA)
    x = g.uniform(-1.0, 1.0, size=(n, 1))
    y = steps_target(x) + cfg.noise * g.standard_normal((n, 1))
    return _split(cfg, "regression", x, y, 1, device, dtype)


def load_spirals(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    """Two interleaved spirals of SPIRAL_TURNS turns in the unit disc, one per class, with
    Gaussian jitter of std `noise` on the points. Adjacent arms are 1 / (2 * SPIRAL_TURNS) apart
    radially, so noise well below 0.25 keeps the classes separable."""
    check_dtype(dtype)
    n = 1000 if cfg.n_samples is None else cfg.n_samples
    g = rng(cfg.seed, _SPIRALS_DATA)
    y = np.arange(n) % 2  # balanced classes
    r = g.uniform(0.0, 1.0, size=n)
    theta = 2.0 * np.pi * SPIRAL_TURNS * r + np.pi * y  # class 1 is class 0 rotated by half a turn
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    x = x + cfg.noise * g.standard_normal((n, 2))
    return _split(cfg, "classification", x, y, 2, device, dtype)
