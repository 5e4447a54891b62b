"""Datasets of the sweep trainer, loaded whole as tensors on one device (no DataLoader).

Contract:
- `DataConfig` is the schema of the Hydra `data` group (`conf/data/<name>.yaml`).
- `load_dataset(cfg, device, dtype)` returns a `Dataset`; `cfg` may be a `DataConfig` or
  an omegaconf `DictConfig`/mapping with the same keys (missing keys take the defaults).
- Every dataset is built deterministically: the same config gives bit-identical tensors on every
  call; `cfg.seed` (not the run's seed) fixes the data and the split. Generated datasets are built
  offline; mnist, fashion_mnist and cifar10 are downloaded once into the shared cache, verified
  (`sweep.data.download`), unless `cfg.root` points at the user's own files.
- `load_splits` adds the validation part (`cfg.val_fraction` of the training part): configs
  are chosen on it; test is only reported.
- `cached_splits` is `load_splits` loaded once per process and device (the packs of one sweep share it).
- Any user-fixable problem raises `DataError` (a `ValueError`) with a one-line message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from . import cifar, digits, idx, mnist1d, synthetic
from .config import DataConfig, DataError, Dataset, carve_validation, resolve_config

__all__ = ["DATASETS", "DataConfig", "DataError", "Dataset", "cached_splits", "load_dataset", "load_splits"]

_Loader = Callable[[DataConfig, torch.device | str, torch.dtype], Dataset]

_LOADERS: dict[str, _Loader] = {
    "digits": digits.load,
    "mnist1d": mnist1d.load,
    "teacher": synthetic.load_teacher,
    "steps": synthetic.load_steps,
    "spirals": synthetic.load_spirals,
    "mnist": idx.load,
    "fashion_mnist": idx.load,
    "cifar10": cifar.load,
}

DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load_dataset(cfg: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Dataset:
    """Build the whole dataset named `cfg.name` as tensors on `device`.

    Unknown name -> `DataError` listing `DATASETS`.
    """
    c = resolve_config(cfg)
    loader = _LOADERS.get(c.name)
    if loader is None:
        raise DataError(
            f"unknown dataset data.name={c.name!r}; choose one of: {', '.join(DATASETS)} (e.g. data=digits)"
        )
    return loader(c, device, dtype)


def load_splits(cfg: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Dataset:
    """`load_dataset` with the validation part (`cfg.val_fraction` of the training part, chosen by
    `cfg.seed`) carved out: what training uses."""
    c = resolve_config(cfg)
    return carve_validation(load_dataset(c, device, dtype), c.val_fraction, c.seed)


_CACHE: dict[tuple, Dataset] = {}


def cached_splits(cfg: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Dataset:
    """`load_splits`, loaded once per process for each (config, device, dtype); the 4 most recent are kept."""
    plain = cfg if isinstance(cfg, dict) else vars(resolve_config(cfg))
    key = (json.dumps(plain, sort_keys=True, default=str), str(device), dtype)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = load_splits(cfg, device=device, dtype=dtype)
    return _CACHE[key]
