"""MNIST and Fashion-MNIST read from the standard IDX files: downloaded, or the user's under `cfg.root`.

Contract:
- `cfg.root` unset: the four `.gz` files are fetched into the shared cache by `sweep.data.download` (verified
  against their SHA-256, downloaded once; `cfg.download=False` refuses to download) and read from there.
- `cfg.root` set: it holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or gzipped with a `.gz`
  suffix (the plain file wins if both exist), read as they are: nothing is downloaded or checksummed.
- The official train/test split is used; `test_fraction` does not apply.
- Pixels are scaled to [0, 1] and each image is flattened to rows * cols (784) features.
- Every problem (download failed, files missing, malformed header/size, counts that disagree) raises a
  one-line `DataError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from . import download
from .config import DataConfig, DataError, Dataset, check_dtype, image_dataset

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dims (count, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dim (count)
NUM_CLASSES = 10

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# name -> title, for the error messages.
_TITLE = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in IDX file `path` (gzip if it ends in .gz); its header must carry
    `magic` and its size must match the header's dimensions exactly."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read IDX file {path}: {e}") from None

    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated: {len(raw)} bytes, too short for a header")
    (found,) = struct.unpack(">I", raw[:4])  # IDX integers are big-endian
    if found != magic:
        raise DataError(
            f"IDX file {path} has magic number 0x{found:08x}, expected 0x{magic:08x} "
            f"(uint8, {ndim}-D); is it the right file, and not still compressed?"
        )
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated: {len(raw)} bytes, header needs {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if any(d == 0 for d in dims):
        raise DataError(f"IDX file {path} has an empty dimension in its header: {dims}")
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path} holds {len(raw) - header} data bytes but its header {dims} "
            f"needs {expected}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _locate(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, name in FILES.items():
        plain, gz = root / name, root / f"{name}.gz"
        if plain.is_file():
            found[key] = plain
        elif gz.is_file():
            found[key] = gz
        else:
            missing.append(f"{plain} or {gz}")
    if missing:
        raise DataError(f"missing IDX file(s): looked for {'; '.join(missing)}{_hint(root)}")
    return found


def _hint(root: Path) -> str:
    # torchvision keeps the same files one or two levels down; point there instead of just failing.
    name = FILES["train_images"]
    for sub in (root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        if (sub / name).is_file() or (sub / f"{name}.gz").is_file():
            return f" (found them in {sub}: set data.root={sub})"
    return ""


def _read_split(images: Path, labels: Path, shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC)
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    if shape is not None and x.shape[1:] != shape:
        raise DataError(f"{images} has {x.shape[1:]} images but the training images are {shape}")
    if y.max() >= NUM_CLASSES:
        raise DataError(f"{labels} contains label {int(y.max())}; expected 0..{NUM_CLASSES - 1}")
    return x, y


def _user_files(cfg: DataConfig) -> dict[str, Path]:
    title = _TITLE[cfg.name]
    root = Path(os.path.expandvars(str(cfg.root))).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data.root={root} is not a directory: point it at the directory holding the {title} IDX files, "
            "or set data.root=null to download them"
        )
    return _locate(root)


def _fetched_files(cfg: DataConfig) -> dict[str, Path]:
    folder = download.fetch(cfg.name, cfg.cache_dir, cfg.mirror, download=cfg.download)
    return {key: folder / f"{name}.gz" for key, name in FILES.items()}


def load(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    check_dtype(dtype)
    files = _user_files(cfg) if cfg.root else _fetched_files(cfg)
    x_tr, y_tr = _read_split(files["train_images"], files["train_labels"], None)
    x_te, y_te = _read_split(files["test_images"], files["test_labels"], x_tr.shape[1:])

    return image_dataset(cfg.name, x_tr, y_tr, x_te, y_te, NUM_CLASSES, device, dtype)
