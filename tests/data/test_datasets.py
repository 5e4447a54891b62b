"""Tests of sweep.data: real data, real files in tmp_path, no mocks.

mnist1d tests always pass a tmp cache_dir so they never touch ~/.cache.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from sweep.data import DATASETS, DataConfig, DataError, Dataset, load_dataset
from sweep.data import mnist1d as m1d
from sweep.data.cache import read_npz, write_npz
from sweep.data.synthetic import STEP_LEVELS, steps_target

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "data"
SMALL_MNIST1D = 200  # enough for 10 classes, generated in well under a second


def load(name: str, tmp_path: Path, **kw) -> Dataset:
    if name == "mnist1d":
        kw.setdefault("n_samples", SMALL_MNIST1D)
        kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return load_dataset(DataConfig(name=name, **kw))


def same(a: Dataset, b: Dataset) -> bool:
    fields = ("x_train", "y_train", "x_test", "y_test")
    return all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)


# --- shapes, dtypes, tasks -------------------------------------------------------------------

EXPECTED = {  # name: (task, num_inputs, num_outputs, total samples)
    "digits": ("classification", 64, 10, 1797),
    "mnist1d": ("classification", 40, 10, SMALL_MNIST1D),
    "teacher": ("regression", 10, 1, 2000),
    "steps": ("regression", 1, 1, 1000),
    "spirals": ("classification", 2, 2, 1000),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_task(name: str, dtype: torch.dtype, tmp_path: Path) -> None:
    task, d_in, d_out, total = EXPECTED[name]
    kw = {}
    if name == "mnist1d":
        kw = {"cache_dir": str(tmp_path / "cache"), "n_samples": SMALL_MNIST1D}
    ds = load_dataset(DataConfig(name=name, **kw), device="cpu", dtype=dtype)
    assert (ds.name, ds.task, ds.num_inputs, ds.num_outputs) == (name, task, d_in, d_out)
    assert ds.n_train + ds.n_test == total
    assert ds.n_test == round(total * 0.2)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == dtype and x.shape == (len(x), d_in) and x.device.type == "cpu"
        assert torch.isfinite(x).all()
        if task == "classification":
            assert y.dtype == torch.int64 and y.shape == (len(x),)
            assert int(y.min()) >= 0 and int(y.max()) < d_out
        else:
            assert y.dtype == dtype and y.shape == (len(x), d_out)
    if task == "classification":  # every class is present in training
        assert set(ds.y_train.tolist()) == set(range(d_out))


def test_digits_scaled_to_unit_interval(tmp_path: Path) -> None:
    ds = load("digits", tmp_path)
    x = torch.cat([ds.x_train, ds.x_test])
    assert x.shape == (1797, 64)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_split_fixed_by_seed(tmp_path: Path) -> None:
    a, b = load("digits", tmp_path, seed=3), load("digits", tmp_path, seed=3)
    assert same(a, b)
    c = load("digits", tmp_path, seed=4)
    assert not torch.equal(a.x_test, c.x_test)
    # Same samples, only split differently.
    rows = lambda d: sorted(map(tuple, torch.cat([d.x_train, d.x_test]).tolist()))  # noqa: E731
    assert rows(a) == rows(c)


def test_test_fraction_respected(tmp_path: Path) -> None:
    ds = load("digits", tmp_path, test_fraction=0.3)
    assert ds.n_test == round(1797 * 0.3) and ds.n_train == 1797 - ds.n_test


# --- generated data --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist1d", "teacher", "steps", "spirals"])
def test_generated_deterministic_and_seeded(name: str, tmp_path: Path) -> None:
    noise = {} if name == "mnist1d" else {"noise": 0.1}
    a = load(name, tmp_path, seed=1, **noise)
    b = load(name, tmp_path, seed=1, **noise)
    assert same(a, b)
    c = load(name, tmp_path, seed=2, **noise)
    assert not torch.equal(a.x_train, c.x_train)


@pytest.mark.parametrize("name", ["teacher", "steps", "spirals"])
def test_n_samples_and_noise(name: str, tmp_path: Path) -> None:
    ds = load(name, tmp_path, n_samples=50)
    assert ds.n_train + ds.n_test == 50
    clean, noisy = load(name, tmp_path), load(name, tmp_path, noise=0.1)
    if name == "spirals":  # noise jitters the points, labels stay
        assert torch.equal(clean.y_train, noisy.y_train)
        assert not torch.equal(clean.x_train, noisy.x_train)
    else:  # noise is on the targets, inputs stay
        assert torch.equal(clean.x_train, noisy.x_train)
        resid = (noisy.y_train - clean.y_train).std().item()
        assert 0.08 < resid < 0.12


def test_steps_target_is_piecewise_constant(tmp_path: Path) -> None:
    ds = load_dataset(DataConfig(name="steps"), dtype=torch.float64)
    x = ds.x_train.numpy()[:, 0]
    assert x.min() >= -1.0 and x.max() <= 1.0
    y = ds.y_train.numpy()[:, 0]
    np.testing.assert_array_equal(y, steps_target(x))
    assert set(np.unique(y)) == set(STEP_LEVELS)


def test_teacher_target_scale_and_stability(tmp_path: Path) -> None:
    ds = load("teacher", tmp_path)
    assert 0.8 < ds.y_train.std().item() < 1.2
    # The teacher depends on the seed only: a smaller sample labels its points identically.
    big = {
        tuple(x): y
        for x, y in zip(torch.cat([ds.x_train, ds.x_test]).tolist(), torch.cat([ds.y_train, ds.y_test]).tolist())
    }
    small = load("teacher", tmp_path, n_samples=100)
    for x, y in zip(small.x_train.tolist(), small.y_train.tolist()):
        assert big[tuple(x)] == y


def test_spirals_are_learnable(tmp_path: Path) -> None:
    # 1-nearest-neighbour on the default noise separates the arms almost perfectly.
    ds = load("spirals", tmp_path, noise=0.05)
    nearest = torch.cdist(ds.x_test, ds.x_train).argmin(dim=1)
    acc = (ds.y_train[nearest] == ds.y_test).float().mean().item()
    assert acc > 0.9


# --- mnist1d cache ---------------------------------------------------------------------------


def test_mnist1d_cache_hit_and_identical(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = m1d.cache_path(0, SMALL_MNIST1D, str(cache))
    assert not path.exists()
    first = load("mnist1d", tmp_path)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    _, _, from_cache = m1d.load_arrays(0, SMALL_MNIST1D, str(cache))
    assert from_cache
    second = load("mnist1d", tmp_path)
    assert same(first, second)
    assert path.stat().st_mtime_ns == stamp  # read, not rewritten
    assert os.listdir(cache) == [path.name]  # no temp files left behind


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong_shape"])
def test_mnist1d_corrupt_cache_is_regenerated(damage: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load("mnist1d", tmp_path)
    path = m1d.cache_path(0, SMALL_MNIST1D, str(cache))
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not an npz file" * 100)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a readable npz whose content does not match its key
        np.savez(path, x=np.zeros((3, 40)), y=np.zeros(3, dtype=np.int64), seed=0, n_samples=3)
    _, _, from_cache = m1d.load_arrays(0, SMALL_MNIST1D, str(cache))
    assert not from_cache
    assert same(first, load("mnist1d", tmp_path))
    assert m1d.load_arrays(0, SMALL_MNIST1D, str(cache))[2]  # repaired on disk


def test_cache_write_failure_leaves_no_file(tmp_path: Path) -> None:
    # An object array that cannot be pickled makes np.savez fail half-way through the write.
    path = tmp_path / "x.npz"
    with pytest.raises(Exception):  # noqa: B017  (whatever np.savez raises: the point is what is left)
        write_npz(path, {"x": np.array([lambda: 0], dtype=object)})
    assert os.listdir(tmp_path) == []
    assert read_npz(path) is None


def test_mnist1d_keeps_global_rng_state(tmp_path: Path) -> None:
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    load("mnist1d", tmp_path, seed=5)  # generates: make_dataset reseeds the globals internally
    assert (random.random(), np.random.rand()) == expected


def test_mnist1d_default_yaml_matches_package(tmp_path: Path) -> None:
    from mnist1d.data import get_dataset_args, make_dataset

    schema = OmegaConf.structured(DataConfig)
    cfg = OmegaConf.merge(schema, OmegaConf.load(CONF_DIR / "mnist1d.yaml"))
    cfg.cache_dir = str(tmp_path / "cache")
    ds = load_dataset(cfg)
    ref = make_dataset(get_dataset_args())
    assert (ds.n_train, ds.n_test) == (4000, 1000)
    assert torch.equal(ds.x_train, torch.from_numpy(ref["x"]).float())
    assert torch.equal(ds.y_test, torch.from_numpy(ref["y_test"]).long())


def test_mnist1d_n_samples_must_split_evenly(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="multiple of 10"):
        load("mnist1d", tmp_path, n_samples=205)


# --- MNIST / Fashion-MNIST IDX files ---------------------------------------------------------

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def write_idx(path: Path, arr: np.ndarray, magic: int | None = None) -> None:
    magic = (0x0800 | arr.ndim) if magic is None else magic
    header = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, gz: tuple[bool, ...] = (False,) * 4) -> dict[str, np.ndarray]:
    g = np.random.default_rng(0)
    arrays = {
        NAMES[0]: g.integers(0, 256, (5, 28, 28)),
        NAMES[1]: np.array([0, 1, 2, 9, 4]),
        NAMES[2]: g.integers(0, 256, (3, 28, 28)),
        NAMES[3]: np.array([7, 3, 5]),
    }
    root.mkdir(parents=True, exist_ok=True)
    for (name, arr), zipped in zip(arrays.items(), gz):
        write_idx(root / (name + ".gz" if zipped else name), arr)
    return arrays


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [(False,) * 4, (True,) * 4, (True, False, False, True)])
def test_idx_loads(name: str, gz: tuple[bool, ...], tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz)
    ds = load_dataset(DataConfig(name=name, root=str(tmp_path)))  # the official split (5 train, 3 test)
    assert (ds.name, ds.task, ds.num_inputs, ds.num_outputs) == (name, "classification", 784, 10)
    assert ds.x_train.shape == (5, 784) and ds.x_test.shape == (3, 784)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    expected = torch.from_numpy(arrays[NAMES[0]].reshape(5, 784)).float() / 255.0
    assert torch.equal(ds.x_train, expected)
    assert ds.y_train.tolist() == [0, 1, 2, 9, 4] and ds.y_test.tolist() == [7, 3, 5]


def test_idx_root_unset_means_the_cache(tmp_path: Path) -> None:
    # Downloads are covered in test_download.py; here nothing is cached and downloading is off.
    with pytest.raises(DataError, match=r"not in the cache .*run `sweep data fetch mnist`.*or set data.root=DIR"):
        load_dataset(DataConfig(name="mnist", cache_dir=str(tmp_path), download=False))


def test_idx_root_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path / "nope")))


def test_idx_missing_file_named(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / NAMES[3]).unlink()
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / NAMES[3]) in msg and str(tmp_path / (NAMES[3] + ".gz")) in msg
    assert NAMES[0] not in msg and "\n" not in msg


def test_idx_hints_torchvision_layout(tmp_path: Path) -> None:
    write_mnist(tmp_path / "MNIST" / "raw")
    with pytest.raises(DataError, match=r"set data.root=.*MNIST/raw"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: write_idx(p, np.zeros((5, 28, 28)), magic=0x801), "magic number 0x00000801"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "truncated or corrupt"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "truncated or corrupt"),
        (lambda p: p.write_bytes(b"\0\0"), "truncated"),
        (lambda p: write_idx(p, np.zeros((4, 28, 28))), "5 labels"),
        (lambda p: write_idx(p, np.zeros((5, 0, 28))), "empty dimension"),
    ],
)
def test_idx_malformed_file(corrupt, message: str, tmp_path: Path) -> None:
    write_mnist(tmp_path)
    corrupt(tmp_path / NAMES[0])
    with pytest.raises(DataError, match=message) as e:
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))
    assert NAMES[0] in str(e.value)


def test_idx_bad_gzip_and_bad_labels(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / NAMES[2]).unlink()
    (tmp_path / (NAMES[2] + ".gz")).write_bytes(b"definitely not gzip")
    with pytest.raises(DataError, match=NAMES[2]):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))
    write_mnist(tmp_path)
    (tmp_path / (NAMES[2] + ".gz")).unlink()
    write_idx(tmp_path / NAMES[3], np.array([1, 2, 10]))
    with pytest.raises(DataError, match="label 10"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))


# --- config handling -------------------------------------------------------------------------


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name="cifar"))
    assert "cifar" in str(e.value)
    assert all(name in str(e.value) for name in DATASETS)
    assert set(DATASETS) == {"digits", "mnist1d", "teacher", "steps", "spirals", "mnist", "fashion_mnist", "cifar10"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"test_fraction": 0.0001}, "test_fraction"),
        ({"seed": -1}, "seed"),
        ({"seed": "abc"}, "seed"),
        ({"noise": -0.1}, "noise"),
        ({"n_samples": 100}, "n_samples"),  # digits has a fixed size
        ({"noise": 0.1}, "noise"),  # digits is not generated
    ],
)
def test_invalid_config(overrides: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset({"name": "digits", **overrides})


def test_dictconfig_and_defaults() -> None:
    a = load_dataset(OmegaConf.create({"name": "spirals", "seed": 2}))  # other keys defaulted
    b = load_dataset(DataConfig(name="spirals", seed=2))
    assert same(a, b)


@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_conf_yaml_matches_schema(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# ")  # one-line description on top
    # Merging onto the structured schema rejects unknown keys and wrong types, as Hydra would.
    cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), OmegaConf.load(path))
    assert cfg.name == path.stem and cfg.name in DATASETS
    cfg.cache_dir = str(tmp_path / "cache")
    if cfg.name in ("mnist", "fashion_mnist", "cifar10"):
        assert cfg.download and cfg.root is None  # downloads by default (test_download.py serves them)
        cfg.download = False
        with pytest.raises(DataError, match=rf"`sweep data fetch {cfg.name}`"):
            load_dataset(cfg)
        if cfg.name == "cifar10":
            from download_helpers import cifar_archive, cifar_records

            (tmp_path / "own").mkdir()
            (tmp_path / "own" / "cifar-10-binary.tar.gz").write_bytes(cifar_archive(cifar_records()))
        else:
            write_mnist(tmp_path / "own")
        cfg.root = str(tmp_path / "own")
    elif cfg.name == "mnist1d":
        cfg.n_samples = SMALL_MNIST1D  # the full default is covered above
    ds = load_dataset(cfg)
    assert ds.name == path.stem


def test_all_datasets_have_a_yaml() -> None:
    assert {p.stem for p in CONF_DIR.glob("*.yaml")} == set(DATASETS)
    assert {f.name for f in dataclasses.fields(DataConfig)} >= {
        "name",
        "seed",
        "test_fraction",
        "n_samples",
        "noise",
        "root",
        "cache_dir",
        "mirror",
        "download",
    }


def test_the_validation_part_is_carved_from_training_fixed_by_the_data_seed(tmp_path: Path) -> None:
    from sweep.data import load_splits

    whole = load_dataset(DataConfig(name="digits"))
    ds = load_splits(DataConfig(name="digits", val_fraction=0.25))
    assert ds.n_train + ds.x_val.shape[0] == whole.n_train and ds.x_val.shape[0] == round(whole.n_train * 0.25)
    assert torch.equal(ds.x_test, whole.x_test)  # the test split is untouched
    rows = {tuple(r.tolist()) for r in whole.x_train}
    train, val = ({tuple(r.tolist()) for r in x} for x in (ds.x_train, ds.x_val))
    assert train | val <= rows and len(train & val) <= 1  # disjoint (digits holds a few duplicates)
    again, other = (
        load_splits(DataConfig(name="digits", val_fraction=0.25)),
        load_splits(DataConfig(name="digits", val_fraction=0.25, seed=1)),
    )
    assert torch.equal(again.x_val, ds.x_val) and not torch.equal(other.x_val, ds.x_val)
    with pytest.raises(DataError, match="val_fraction"):
        load_splits(DataConfig(name="digits", val_fraction=0.0))


# --- knobs a dataset does not read -------------------------------------------------------------

# a value other than the default for every knob that can change what a dataset is
OTHER_VALUE = {"test_fraction": 0.3, "n_samples": 300, "noise": 0.1, "input_dim": 5, "teacher_width": 8}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_reads_table_is_what_each_loader_reads(name: str, tmp_path: Path) -> None:
    """READS is proven against the loaders (called directly, past the refusal): a knob it lists changes the
    data, a knob it leaves out changes nothing, so refusing those loses nothing and keeps run_id honest."""
    from sweep.data import _LOADERS, READ_BY_ALL, READS

    assert set(OTHER_VALUE) == {f.name for f in dataclasses.fields(DataConfig)} - set(READ_BY_ALL)
    base = {"n_samples": SMALL_MNIST1D, "cache_dir": str(tmp_path)} if name == "mnist1d" else {}
    ref = _LOADERS[name](DataConfig(name=name, **base), "cpu", torch.float64)
    for key, value in OTHER_VALUE.items():
        other = _LOADERS[name](DataConfig(name=name, **{**base, key: value}), "cpu", torch.float64)
        assert same(ref, other) == (key not in READS[name]), (name, key)


@pytest.mark.parametrize(
    ("name", "key", "value", "says"),
    [
        ("digits", "input_dim", 20, "data.input_dim=20 has no effect on dataset 'digits' (its knobs: data.seed, "
         "data.val_fraction, data.test_fraction): remove it, or set data.input_dim=10"),
        ("digits", "teacher_width", 8, "data.teacher_width=8 has no effect on dataset 'digits'"),
        ("mnist", "test_fraction", 0.3, "data.test_fraction=0.3 has no effect on dataset 'mnist' (its knobs: "
         "data.seed, data.val_fraction): remove it, or set data.test_fraction=0.2"),
        ("spirals", "input_dim", 3, "data.input_dim=3 has no effect on dataset 'spirals'"),
    ],
)  # fmt: skip
def test_a_knob_the_dataset_does_not_read_is_refused_in_one_line(name, key, value, says, tmp_path):
    """`data.input_dim=20` on digits was accepted, made a new run_id and trained bit-identical weights."""
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name=name, **{key: value}, cache_dir=str(tmp_path), download=False))
    assert str(e.value).startswith(says) and "\n" not in str(e.value)


def test_images_load_without_a_warning(tmp_path: Path) -> None:
    """IDX arrays are read-only views of the file's bytes: handed to torch as they were, every load printed
    PyTorch's "The given NumPy array is not writable" warning."""
    import warnings

    write_mnist(tmp_path, (True,) * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(DataConfig(name="mnist", root=str(tmp_path)))
