"""MNIST-1D (Greydanus 2020): 1-D signals of 40 features, 10 classes, generated offline.

Contract:
- The data comes from `mnist1d.data.make_dataset` with the package's default arguments except
  `seed = cfg.seed` and `num_samples = cfg.n_samples` (default 5,000). `get_dataset` is
  never used: it downloads.
- The package shuffles the samples with its seed; the last `test_fraction` of that order is the
  test set, which at test_fraction=0.2 reproduces the package's own 4,000 / 1,000 split.
- Features are already standardised by the package; they are not rescaled here.
- Generated arrays are cached as `<cache_dir>/mnist1d-<package version>-seed<S>-n<N>.npz`
  (written atomically); an unreadable or inconsistent cache file is regenerated and replaced.
"""

from __future__ import annotations

import importlib.metadata
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from .cache import cache_root, read_npz, write_npz
from .config import (
    DataConfig,
    DataError,
    Dataset,
    check_dtype,
    num_test_samples,
    to_dataset,
)

DEFAULT_N_SAMPLES = 5000
NUM_FEATURES = 40  # the package's final_seq_length
NUM_CLASSES = 10


def _package_version() -> str:
    # Part of the cache key: a different mnist1d release may generate different signals.
    try:
        return importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cache_path(seed: int, n_samples: int, cache_dir: str | None) -> Path:
    return cache_root(cache_dir) / f"mnist1d-{_package_version()}-seed{seed}-n{n_samples}.npz"


def generate(seed: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """All `n_samples` signals (float64 [N, 40]) and labels (int64 [N]) in the package's order."""
    from mnist1d.data import get_dataset_args, make_dataset  # deferred: pulls in scipy/matplotlib

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = n_samples
    # make_dataset reseeds the global `random` and `np.random` generators; put them back so that
    # loading data does not change the run's own random stream.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float64, copy=False)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64, copy=False)
    return x, y


def _valid(arrays: dict[str, np.ndarray], seed: int, n_samples: int) -> bool:
    try:
        x, y = arrays["x"], arrays["y"]
        return (
            int(arrays["seed"]) == seed
            and int(arrays["n_samples"]) == n_samples
            and x.dtype == np.float64
            and x.shape == (n_samples, NUM_FEATURES)
            and y.dtype == np.int64
            and y.shape == (n_samples,)
            and bool(np.isfinite(x).all())
            and bool(((y >= 0) & (y < NUM_CLASSES)).all())
        )
    except (KeyError, TypeError, ValueError):
        return False


def load_arrays(seed: int, n_samples: int, cache_dir: str | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(x, y, from_cache): the cached arrays if a valid cache file exists, else freshly generated
    ones (which are then cached)."""
    path = cache_path(seed, n_samples, cache_dir)
    cached = read_npz(path)
    if cached is not None and _valid(cached, seed, n_samples):
        return cached["x"], cached["y"], True
    x, y = generate(seed, n_samples)
    try:
        write_npz(path, {"x": x, "y": y, "seed": np.int64(seed), "n_samples": np.int64(n_samples)})
    except OSError as e:
        # A read-only or full cache disk must not stop the run; it only costs regeneration.
        warnings.warn(
            f"could not write the mnist1d cache {path}: {e}; set data.cache_dir to a writable directory", stacklevel=2
        )
    return x, y, False


def load(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    check_dtype(dtype)
    n = DEFAULT_N_SAMPLES if cfg.n_samples is None else cfg.n_samples
    if n % NUM_CLASSES or n < 2 * NUM_CLASSES:
        raise DataError(
            f"data.n_samples={n} must be a multiple of {NUM_CLASSES} and at least "
            f"{2 * NUM_CLASSES} for mnist1d (it draws the same number of signals per class)"
        )
    n_test = num_test_samples(n, cfg.test_fraction)
    x, y, _ = load_arrays(cfg.seed, n, cfg.cache_dir)
    k = n - n_test
    return to_dataset(cfg.name, "classification", x[:k], y[:k], x[k:], y[k:], NUM_CLASSES, device, dtype)
