"""CIFAR-10 read from its binary archive (`cifar-10-binary.tar.gz`), downloaded into the shared cache.

Contract:
- `cfg.root` unset: the archive is fetched by `sweep.data.download` (verified against its SHA-256, downloaded
  once; `cfg.download=False` refuses to download). `cfg.root` set: the user's `<root>/cifar-10-binary.tar.gz` is
  used as it is. Either way it is read in place: the six batch members are read into memory
  straight from the tar stream, nothing is extracted to disk and nothing is unpickled.
- Each batch is a run of fixed-size records: 1 label byte (0..9), then 3072 pixel bytes (1024 red, 1024 green,
  1024 blue, each 32x32 row-major). A record's pixels, in that order and scaled to [0, 1], are its 3072 features.
- The official split: `data_batch_1..5.bin` (50,000) train, `test_batch.bin` (10,000) test; `test_fraction`
  does not apply.
- Every problem (download failed, a member missing, a size that is not whole records, a bad label) raises a
  one-line `DataError` naming the archive.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from . import download
from .config import DataConfig, DataError, Dataset, check_dtype, image_dataset

ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"  # the archive's top folder
TRAIN_MEMBERS = tuple(f"{FOLDER}/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = f"{FOLDER}/test_batch.bin"
NUM_CLASSES = 10
PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS


def read_batches(archive: Path) -> dict[str, np.ndarray]:
    """Each batch member of `archive` (by its path in the archive) as a uint8 [N, RECORD] array of records.
    Only the six known member names are read; any other member (or a link) is skipped, never written to disk."""
    wanted = {*TRAIN_MEMBERS, TEST_MEMBER}
    found: dict[str, np.ndarray] = {}
    try:
        # "r|gz": one pass over the stream, so the 170 MB archive is decompressed once.
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name not in wanted or not member.isfile():
                    continue
                f = tar.extractfile(member)
                raw = f.read() if f is not None else b""
                if len(raw) == 0 or len(raw) % RECORD:
                    raise DataError(
                        f"{archive}: {name} holds {len(raw)} bytes, not whole records of {RECORD} bytes; "
                        "delete the archive and run `sweep data fetch cifar10` again"
                    )
                found[name] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
        raise DataError(f"cannot read {archive}: {e}; delete it and run `sweep data fetch cifar10` again") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{archive} lacks {', '.join(missing)}: is it the binary CIFAR-10 archive ({ARCHIVE})?")
    return found


def _split(records: np.ndarray, archive: Path) -> tuple[np.ndarray, np.ndarray]:
    labels = records[:, 0]
    if labels.max() >= NUM_CLASSES:
        raise DataError(f"{archive} contains label {int(labels.max())}; expected 0..{NUM_CLASSES - 1}")
    return records[:, 1:], labels


def load(cfg: DataConfig, device: torch.device | str, dtype: torch.dtype) -> Dataset:
    check_dtype(dtype)
    if cfg.root:
        archive = Path(os.path.expandvars(cfg.root)).expanduser() / ARCHIVE
        if not archive.is_file():
            raise DataError(f"data.root: no {archive}; put {ARCHIVE} there, or set data.root=null to download it")
    else:
        archive = download.fetch(cfg.name, cfg.cache_dir, cfg.mirror, download=cfg.download) / ARCHIVE
    batches = read_batches(archive)
    x_tr, y_tr = _split(np.concatenate([batches[m] for m in TRAIN_MEMBERS]), archive)
    x_te, y_te = _split(batches[TEST_MEMBER], archive)
    return image_dataset(cfg.name, x_tr, y_tr, x_te, y_te, NUM_CLASSES, device, dtype)
