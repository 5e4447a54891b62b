"""Datasets of the sweep trainer, loaded whole as tensors on one device (no DataLoader).

Contract:
- ``DataConfig`` is the schema of the Hydra ``data`` group (``conf/data/<name>.yaml``).
- ``load_dataset(cfg, device, dtype)`` returns a ``Dataset``; ``cfg`` may be a ``DataConfig`` or
  an omegaconf ``DictConfig``/mapping with the same keys (missing keys take the defaults).
- Every dataset is built offline and deterministically: the same config gives bit-identical
  tensors on every call; ``cfg.seed`` (not the run's seed) fixes the data and the split.
- ``load_splits`` adds the validation part (``cfg.val_fraction`` of the training part): configs
  are chosen on it; test is only reported.
- Any user-fixable problem raises ``DataError`` (a ``ValueError``) with a one-line message.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from . import digits, idx, mnist1d, synthetic
from .config import DataConfig, DataError, Dataset, carve_validation, resolve_config

__all__ = ["DATASETS", "DataConfig", "DataError", "Dataset", "load_dataset", "load_splits"]

_Loader = Callable[[DataConfig, torch.device | str, torch.dtype], Dataset]

_LOADERS: dict[str, _Loader] = {
    "digits": digits.load,
    "mnist1d": mnist1d.load,
    "teacher": synthetic.load_teacher,
    "steps": synthetic.load_steps,
    "spirals": synthetic.load_spirals,
    "mnist": idx.load,
    "fashion_mnist": idx.load,
}

DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load_dataset(
    cfg: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Dataset:
    """Build the whole dataset named ``cfg.name`` as tensors on ``device``.

    Unknown name -> ``DataError`` listing ``DATASETS``.
    """
    c = resolve_config(cfg)
    loader = _LOADERS.get(c.name)
    if loader is None:
        raise DataError(
            f"unknown dataset data.name={c.name!r}; choose one of: {', '.join(DATASETS)} "
            f"(e.g. data=digits)"
        )
    return loader(c, device, dtype)


def load_splits(cfg: Any, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Dataset:
    """``load_dataset`` with the validation part (``cfg.val_fraction`` of the training part, chosen by
    ``cfg.seed``) carved out: what training uses."""
    c = resolve_config(cfg)
    return carve_validation(load_dataset(c, device, dtype), c.val_fraction, c.seed)
