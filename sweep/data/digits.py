"""scikit-learn's bundled 8x8 handwritten digits (1,797 x 64, 10 classes).

The data ships inside scikit-learn, so loading never touches the network. Pixels (0..16) are
scaled to [0, 1]; the train/test split is a permutation seeded by `cfg.seed`.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import DataConfig, Dataset, check_dtype, split_indices, to_dataset


def load(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    check_dtype(dtype)
    from sklearn.datasets import load_digits  # deferred: importing sklearn costs ~1 s

    x, y = load_digits(return_X_y=True)
    x = np.asarray(x, dtype=np.float64) / 16.0
    y = np.asarray(y, dtype=np.int64)
    train, test = split_indices(len(y), cfg.test_fraction, cfg.seed)
    return to_dataset(cfg.name, "classification", x[train], y[train], x[test], y[test], 10, device, dtype)
