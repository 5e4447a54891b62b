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

__all__ = ["DATASETS", "READS", "DataConfig", "DataError", "Dataset", "cached_splits", "load_dataset", "load_splits"]

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

# Which of DataConfig's keys each dataset reads, beyond those every dataset reads (name, seed, val_fraction) and
# those that say where the data is, not what it is (root, cache_dir, mirror, download: not in run_id). Any other
# key set away from its default is refused (`reject_unread`): it would make a new run_id for identical data.
# tests/data/test_datasets.py proves the table against the loaders: a key left out changes nothing they load.
READS: dict[str, tuple[str, ...]] = {
    "digits": ("test_fraction",),
    "mnist1d": ("test_fraction", "n_samples"),
    "teacher": ("test_fraction", "n_samples", "noise", "input_dim", "teacher_width"),
    "steps": ("test_fraction", "n_samples", "noise"),
    "spirals": ("test_fraction", "n_samples", "noise"),
    "mnist": (),
    "fashion_mnist": (),
    "cifar10": (),
}
READ_BY_ALL = ("name", "seed", "val_fraction", "root", "cache_dir", "mirror", "download")


def reject_unread(c: DataConfig) -> None:
    """DataError (one line) for a key `c.name` does not read, set away from its default."""
    defaults = DataConfig()
    for key, value in vars(c).items():
        if key in READ_BY_ALL or key in READS[c.name] or value == getattr(defaults, key):
            continue
        knobs = ", ".join(f"data.{k}" for k in ("seed", "val_fraction", *READS[c.name]))
        default = getattr(defaults, key)
        raise DataError(
            f"data.{key}={value!r} has no effect on dataset '{c.name}' (its knobs: {knobs}): "
            f"remove it, or set data.{key}={'null' if default is None else default}"
        )


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
    reject_unread(c)
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
