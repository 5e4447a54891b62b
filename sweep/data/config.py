"""Shared types and helpers of the dataset package.

They live here rather than in `sweep/data/__init__.py` so the per-dataset modules can import
them without a circular import through the package.

Contract:
- `DataConfig` is the Hydra schema of the `data` config group.
- `resolve_config` turns a `DataConfig`, an omegaconf `DictConfig` or a plain mapping into a
  validated `DataConfig` with the declared Python types; invalid values raise `DataError`.
- `split_indices` is the one seeded train/test split every shuffled dataset uses.
- `to_dataset` converts numpy arrays into a `Dataset` on the requested device/dtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from sweep.errors import DataError  # the one home of user errors; re-exported by sweep.data

# Separate numpy streams per purpose (see `rng`): the split never shares random numbers with the
# data it splits, and changing how much data is drawn does not change the other streams.
SPLIT_STREAM = 0
VAL_STREAM = 7  # the validation carve-out of the training part (its own stream: the test split is unchanged)


@dataclass
class DataConfig:
    """Schema of the `data` config group (`conf/data/*.yaml`)."""

    # Which dataset: digits | mnist1d | teacher | steps | spirals | mnist | fashion_mnist | cifar10.
    name: str = "digits"
    # Fixes the train/test split and any generated data; deliberately independent of the run's
    # seed so that runs with different init seeds see the same data.
    seed: int = 0
    # Fraction of the samples held out for testing (mnist/fashion_mnist/cifar10 use the official split).
    test_fraction: float = 0.2
    # Fraction of the training part held out for validation: every choice (best lr, best config, best of k
    # restarts) is made on it, never on test. Fixed by `seed`, like the test split.
    val_fraction: float = 0.1
    # Generated datasets (mnist1d, teacher, steps, spirals): total size; None = dataset default.
    n_samples: Optional[int] = None
    # Generated datasets: std of the Gaussian noise on the regression targets (teacher, steps)
    # or on the input points (spirals).
    noise: float = 0.0
    # mnist/fashion_mnist: directory holding your own four IDX files (plain or .gz), read as they are;
    # None = download them into the cache (see `download`).
    root: Optional[str] = None
    # Where mnist1d's generated arrays and downloaded datasets are cached; None = $XDG_CACHE_HOME/sweep or
    # ~/.cache/sweep. Shared by every task of a sweep: a download happens once.
    cache_dir: Optional[str] = None
    # mnist/fashion_mnist/cifar10: base URL of a copy of your own, tried before the standard mirrors.
    mirror: Optional[str] = None
    # mnist/fashion_mnist/cifar10: download missing files (as torchvision's download=True); false = fail at once
    # instead (compute nodes without network: run `sweep data fetch NAME` on a login node first).
    download: bool = True
    # teacher: input dimension of the teacher network (inputs are standard Gaussian).
    input_dim: int = 10
    # teacher: number of tanh hidden units of the teacher network.
    teacher_width: int = 32


@dataclass(frozen=True, eq=False)  # eq=False: tensor fields cannot be compared with `==`
class Dataset:
    """A whole dataset as tensors on one device (the trainer batches by indexing, no DataLoader).

    Classification: `y_*` are int64 class indices of shape [N]. Regression: `y_*` are floats of
    shape [N, num_outputs]. `x_*` are floats of shape [N, num_inputs], already scaled.
    """

    name: str
    task: str  # "classification" | "regression"
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    num_inputs: int
    num_outputs: int  # classes, or regression output dim
    x_val: torch.Tensor | None = field(default=None, repr=False)  # carved from the training part
    y_val: torch.Tensor | None = field(default=None, repr=False)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


def _coerce(key: str, value: Any, kind: type, optional: bool) -> Any:
    if value is None:
        if optional:
            return None
        raise DataError(f"data.{key} must not be null")
    if kind is str:
        return str(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise DataError(f"data.{key} must be true or false, got {value!r}")
    try:
        if kind is int:
            # Reject 2.5 -> 2 silently truncating; accept 3.0 from YAML/CLI.
            if isinstance(value, bool) or float(value) != int(value):
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
    except (TypeError, ValueError):
        pass
    what = "an integer" if kind is int else "a number"
    raise DataError(f"data.{key} must be {what}, got {value!r}")


_TYPES: dict[str, tuple[type, bool]] = {
    "name": (str, False),
    "seed": (int, False),
    "test_fraction": (float, False),
    "val_fraction": (float, False),
    "n_samples": (int, True),
    "noise": (float, False),
    "root": (str, True),
    "cache_dir": (str, True),
    "mirror": (str, True),
    "download": (bool, False),
    "input_dim": (int, False),
    "teacher_width": (int, False),
}


def resolve_config(cfg: Any) -> DataConfig:
    """Read `cfg` (DataConfig, DictConfig or mapping; missing keys take the DataConfig default)
    into a validated `DataConfig`."""
    defaults = DataConfig()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(DataConfig):
        default = getattr(defaults, f.name)
        if isinstance(cfg, Mapping):
            raw = cfg.get(f.name, default)
        else:
            raw = getattr(cfg, f.name, default)
        kind, optional = _TYPES[f.name]
        values[f.name] = _coerce(f.name, raw, kind, optional)
    out = DataConfig(**values)

    if not 0 <= out.seed < 2**32:
        raise DataError(f"data.seed={out.seed} must be in [0, 2**32)")
    if not 0.0 < out.test_fraction < 1.0:
        raise DataError(f"data.test_fraction={out.test_fraction} must be strictly between 0 and 1")
    if not 0.0 < out.val_fraction < 1.0:
        raise DataError(
            f"data.val_fraction={out.val_fraction} must be strictly between 0 and 1 "
            "(the part of the training set every choice of lr or config is made on)"
        )
    if out.n_samples is not None and out.n_samples < 2:
        raise DataError(f"data.n_samples={out.n_samples} must be at least 2 (or null for the default)")
    if not out.noise >= 0.0:  # also rejects NaN
        raise DataError(f"data.noise={out.noise} must be >= 0")
    if out.input_dim < 1 or out.teacher_width < 1:
        raise DataError(f"data.input_dim={out.input_dim} and data.teacher_width={out.teacher_width} must be >= 1")
    return out


def rng(seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible numpy stream `stream` derived from the data seed."""
    return np.random.default_rng([seed, stream])


def num_test_samples(n: int, test_fraction: float) -> int:
    """Number of test samples out of `n`; at least one sample must land on each side."""
    n_test = int(round(n * test_fraction))
    if not 1 <= n_test <= n - 1:
        raise DataError(
            f"data.test_fraction={test_fraction} leaves {n_test} of {n} samples for testing; "
            "choose a fraction (or data.n_samples) that keeps at least one sample in each split"
        )
    return n_test


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (train, test) index split of `range(n)`; the same arguments always give the
    same split."""
    n_test = num_test_samples(n, test_fraction)
    perm = rng(seed, SPLIT_STREAM).permutation(n)
    return perm[n_test:], perm[:n_test]


def carve_validation(ds: Dataset, val_fraction: float, seed: int) -> Dataset:
    """`ds` with a validation part taken from its training part: round(n_train * val_fraction) examples (at
    least 1, leaving at least 1), chosen by the data seed; the rest stay training data, in their order."""
    n = ds.n_train
    n_val = min(max(1, int(round(n * val_fraction))), n - 1)
    if n < 2:
        raise DataError(f"data.val_fraction={val_fraction}: {n} training example(s) cannot be split")
    perm = rng(seed, VAL_STREAM).permutation(n)
    val = torch.from_numpy(np.sort(perm[:n_val])).to(ds.x_train.device)
    keep = torch.from_numpy(np.sort(perm[n_val:])).to(ds.x_train.device)
    return dataclasses.replace(
        ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep], x_val=ds.x_train[val], y_val=ds.y_train[val]
    )


def check_dtype(dtype: torch.dtype) -> None:
    if not dtype.is_floating_point:
        raise DataError(f"dtype={dtype} must be a floating point dtype (e.g. torch.float32)")


def to_dataset(
    name: str,
    task: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_outputs: int,
    device: torch.device | str,
    dtype: torch.dtype,
) -> Dataset:
    """Wrap numpy arrays as a `Dataset`: x -> dtype [N, D]; y -> int64 [N] (classification)
    or dtype [N, out] (regression)."""
    dev = torch.device(device)

    def xs(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=dev, dtype=dtype)

    def ys(a: np.ndarray) -> torch.Tensor:
        a = np.ascontiguousarray(a)
        if task == "classification":
            return torch.from_numpy(a.astype(np.int64, copy=False)).to(dev)
        return torch.from_numpy(a.reshape(len(a), -1)).to(device=dev, dtype=dtype)

    return Dataset(
        name=name,
        task=task,
        x_train=xs(x_train),
        y_train=ys(y_train),
        x_test=xs(x_test),
        y_test=ys(y_test),
        num_inputs=int(x_train.shape[1]),
        num_outputs=num_outputs,
    )


def image_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    device: torch.device | str,
    dtype: torch.dtype,
) -> Dataset:
    """uint8 images [N, ...] and their labels as a classification `Dataset`: each image flattened, its pixels
    scaled to [0, 1] on the device in the target dtype (exact per dtype, and a float64 copy of 50,000 CIFAR
    images on the host would take 1.2 GB)."""
    dev = torch.device(device)

    def pixels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.reshape(len(a), -1).copy()).to(dev).to(dtype) / 255.0  # writable, contiguous

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64)).to(dev)

    return Dataset(
        name=name,
        task="classification",
        x_train=pixels(x_train),
        y_train=labels(y_train),
        x_test=pixels(x_test),
        y_test=labels(y_test),
        num_inputs=int(np.prod(x_train.shape[1:])),
        num_outputs=num_classes,
    )
