"""Tests of sweep.data.download and the datasets it feeds (mnist, fashion_mnist, cifar10): offline, against an HTTP
server on 127.0.0.1 serving small archives in the real formats, with the checksum table swapped for theirs.

No test here reaches the real mirrors: every one replaces `SOURCES[name]` (files and mirrors) first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from download_helpers import (
    CIFAR_DIR,
    IDX_NAMES,
    Mirror,
    cifar_archive,
    cifar_records,
    closed_port_url,
    mnist_files,
    serve,
    silent_port_url,
    table,
    tar_gz,
)

from sweep.data import DataConfig, DataError, load_dataset
from sweep.data import download as dl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def use_source(monkeypatch):
    """use_source(name, files, mirrors): dataset `name` downloads `files` (name -> bytes, their checksums) from
    `mirrors` (base URLs) instead of the real ones."""

    def use(name: str, files: dict[str, bytes], mirrors: list[str]) -> None:
        monkeypatch.setitem(dl.SOURCES, name, dl.Source(table(files), tuple(mirrors)))

    return use


def cfg(name: str, tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(name=name, cache_dir=str(tmp_path / "cache"), **kw)


def cache_files(tmp_path: Path, name: str) -> set[str]:
    folder = dl.dataset_dir(name, str(tmp_path / "cache"))
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def pixels(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.reshape(len(a), -1).astype(np.float32)) / 255.0


# --- a download that then loads --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_download_then_load(name: str, tmp_path: Path, use_source) -> None:
    files, arrays = mnist_files()
    with serve(Mirror(files)) as m:
        use_source(name, files, [m.url])
        ds = load_dataset(cfg(name, tmp_path))  # the official split
        assert sorted(m.names()) == sorted(files)
        again = load_dataset(cfg(name, tmp_path))
        assert len(m.requests) == len(files)  # the second load reads the cache: no request
    assert (ds.name, ds.task, ds.num_inputs, ds.num_outputs) == (name, "classification", 784, 10)
    assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))
    assert torch.equal(ds.x_test, pixels(arrays[IDX_NAMES[2]]))
    assert ds.y_train.tolist() == arrays[IDX_NAMES[1]].tolist() and ds.y_test.tolist() == arrays[IDX_NAMES[3]].tolist()
    assert torch.equal(again.x_train, ds.x_train)
    assert cache_files(tmp_path, name) == {*files, dl.LOCK_FILE}  # the verified archives, no .part left


def test_cifar10_download_then_load(tmp_path: Path, use_source) -> None:
    records = cifar_records()
    files = {"cifar-10-binary.tar.gz": cifar_archive(records)}
    with serve(Mirror(files)) as m:
        use_source("cifar10", files, [m.url])
        ds = load_dataset(cfg("cifar10", tmp_path), dtype=torch.float64)
    train = np.concatenate([records[f"data_batch_{i}.bin"] for i in range(1, 6)])
    test = records["test_batch.bin"]
    assert (ds.name, ds.num_inputs, ds.num_outputs, ds.n_train, ds.n_test) == ("cifar10", 3072, 10, 15, 3)
    assert torch.equal(ds.x_train, torch.from_numpy(train[:, 1:].astype(np.float64)) / 255.0)
    assert torch.equal(ds.x_test, torch.from_numpy(test[:, 1:].astype(np.float64)) / 255.0)
    assert ds.y_train.tolist() == train[:, 0].tolist() and ds.y_test.tolist() == test[:, 0].tolist()
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) <= 1.0


def test_cifar10_archive_problems_are_one_line(tmp_path: Path, use_source) -> None:
    records = cifar_records()
    dotted = {f"./{CIFAR_DIR}/{m}": r.tobytes() for m, r in records.items()}  # tar's "./" prefix is the same name
    torn = {f"{CIFAR_DIR}/{m}": r.tobytes()[: -1 if m == "test_batch.bin" else None] for m, r in records.items()}
    for i, (members, error) in enumerate([(dotted, None), (torn, r"test_batch\.bin holds 9218 bytes, not whole")]):
        files = {"cifar-10-binary.tar.gz": tar_gz(members)}
        with serve(Mirror(files)) as m:
            use_source("cifar10", files, [m.url])
            if error is None:
                assert load_dataset(cfg("cifar10", tmp_path / str(i))).n_test == 3
                continue
            with pytest.raises(DataError, match=error):
                load_dataset(cfg("cifar10", tmp_path / str(i)))


def test_cifar10_reads_only_its_members(tmp_path: Path, use_source) -> None:
    """Members with other names (a path out of the folder) are never written anywhere; a link in place of a batch
    is not followed."""
    records = cifar_records()
    evil = {"../../escape.bin": b"x" * 10, "/tmp/abs.bin": b"y"}
    files = {"cifar-10-binary.tar.gz": cifar_archive(records, extra=evil)}
    with serve(Mirror(files)) as m:
        use_source("cifar10", files, [m.url])
        assert load_dataset(cfg("cifar10", tmp_path)).n_train == 15
    assert not (tmp_path / "escape.bin").exists() and not (tmp_path / "cache" / "escape.bin").exists()

    del records["data_batch_3.bin"]
    linked = {"cifar-10-binary.tar.gz": cifar_archive(records, links={f"{CIFAR_DIR}/data_batch_3.bin": "/etc/passwd"})}
    with serve(Mirror(linked)) as m:
        use_source("cifar10", linked, [m.url])
        with pytest.raises(DataError, match=r"lacks cifar-10-batches-bin/data_batch_3\.bin"):
            load_dataset(cfg("cifar10", tmp_path / "other"))


# --- refusing wrong bytes ----------------------------------------------------------------------------------------
def test_corrupt_file_refused_and_not_kept(tmp_path: Path, use_source) -> None:
    files, _ = mnist_files()
    bad = IDX_NAMES[0] + ".gz"
    with serve(Mirror(files, corrupt={bad})) as m:
        use_source("mnist", files, [m.url])
        with pytest.raises(DataError) as e:
            load_dataset(cfg("mnist", tmp_path))
    msg = str(e.value)
    assert f"{m.url}{bad}" in msg and "SHA-256" in msg and "refused" in msg and "\n" not in msg
    assert bad not in cache_files(tmp_path, "mnist") and bad + dl.PART_SUFFIX not in cache_files(tmp_path, "mnist")


def test_verify_replaces_a_damaged_cached_file(tmp_path: Path, use_source) -> None:
    """`sweep data fetch` (verify=True) rehashes what is cached: a same-size damaged file is downloaded again."""
    files, _ = mnist_files()
    with serve(Mirror(files)) as m:
        use_source("mnist", files, [m.url])
        folder = dl.fetch("mnist", str(tmp_path / "cache"))
        target = folder / (IDX_NAMES[2] + ".gz")
        target.write_bytes(b"\0" * target.stat().st_size)
        dl.fetch("mnist", str(tmp_path / "cache"), verify=True)
        assert target.read_bytes() == files[target.name]
        assert m.names().count(target.name) == 2


# --- mirrors -----------------------------------------------------------------------------------------------------
def test_failing_mirrors_fall_through_to_the_next(tmp_path: Path, use_source) -> None:
    files, arrays = mnist_files()
    gone, bad, good = Mirror(files, missing=set(files)), Mirror(files, corrupt=set(files)), Mirror(files)
    with serve(gone), serve(bad), serve(good):
        use_source("mnist", files, [gone.url, closed_port_url(), bad.url, good.url])
        ds = load_dataset(cfg("mnist", tmp_path))
    assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))
    assert sorted(gone.names()) == sorted(bad.names()) == sorted(good.names()) == sorted(files)


def test_data_mirror_is_tried_first(tmp_path: Path, use_source) -> None:
    files, _ = mnist_files()
    with serve(Mirror(files)) as standard, serve(Mirror(files)) as course:
        use_source("mnist", files, [standard.url])
        load_dataset(cfg("mnist", tmp_path, mirror=course.url))
    assert sorted(course.names()) == sorted(files) and standard.requests == []


# --- one download per cache --------------------------------------------------------------------------------------
def test_concurrent_fetches_download_once(tmp_path: Path, use_source) -> None:
    """Two loaders start together on one cache (as the tasks of a SLURM array): the first request is held until a
    second one arrives, or for 2 s; under the lock none arrives, and each file is requested once."""
    files, arrays = mnist_files()
    second = threading.Event()

    def hold_first(name: str) -> None:
        if len(mirror.requests) == 1:
            second.wait(timeout=2)
        else:
            second.set()

    mirror = Mirror(files, before_body=hold_first)
    start = threading.Barrier(2)
    results: list[object] = [None, None]

    def load(i: int) -> None:
        start.wait()
        try:
            results[i] = load_dataset(cfg("mnist", tmp_path))
        except BaseException as e:  # handed to the main thread's asserts
            results[i] = e

    with serve(mirror):
        use_source("mnist", files, [mirror.url])
        threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(mirror.names()) == sorted(files)
    for ds in results:
        assert not isinstance(ds, BaseException), ds
        assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))


# --- killed downloads --------------------------------------------------------------------------------------------
def test_dropped_connection_leaves_a_part_that_is_resumed(tmp_path: Path, use_source) -> None:
    files, arrays = mnist_files()
    big = IDX_NAMES[0] + ".gz"
    cut = len(files[big]) // 2
    with serve(Mirror(files, drop_after={big: cut})) as m:
        use_source("mnist", files, [m.url])
        with pytest.raises(DataError, match=rf"{big}: the connection dropped after {cut} of"):
            load_dataset(cfg("mnist", tmp_path))
    part = dl.dataset_dir("mnist", str(tmp_path / "cache")) / (big + dl.PART_SUFFIX)
    assert part.stat().st_size == cut and big not in cache_files(tmp_path, "mnist")  # never taken for the file
    with serve(Mirror(files)) as m:
        use_source("mnist", files, [m.url])
        ds = load_dataset(cfg("mnist", tmp_path))
    assert (big, f"bytes={cut}-") in m.requests and m.names().count(big) == 1
    assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]])) and not part.exists()


@pytest.mark.parametrize(
    "kept, no_range, ranges",
    [
        (0.5, False, ["bytes=HALF-", None]),  # a wrong prefix: resumed, refused, restarted from byte 0
        (1.0, False, [None]),  # full size but wrong: never taken for the file, downloaded again
        (0.5, True, ["bytes=HALF-"]),  # a server that ignores Range sends it all: written from byte 0
    ],
)
def test_leftover_part_is_restarted_when_it_cannot_be_resumed(tmp_path, use_source, kept, no_range, ranges) -> None:
    files, arrays = mnist_files()
    big = IDX_NAMES[0] + ".gz"
    folder = dl.dataset_dir("mnist", str(tmp_path / "cache"))
    folder.mkdir(parents=True)
    half = len(files[big]) // 2
    (folder / (big + dl.PART_SUFFIX)).write_bytes(b"\0" * int(len(files[big]) * kept))
    with serve(Mirror(files, no_range=no_range)) as m:
        use_source("mnist", files, [m.url])
        ds = load_dataset(cfg("mnist", tmp_path))
    assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))
    assert (folder / big).read_bytes() == files[big] and not (folder / (big + dl.PART_SUFFIX)).exists()
    assert [r for n, r in m.requests if n == big] == [r and r.replace("HALF", str(half)) for r in ranges]


# --- no network ---------------------------------------------------------------------------------------------------
def test_no_network_and_no_cache_is_one_line_naming_the_fetch_command(tmp_path: Path, use_source, capsys) -> None:
    files, _ = mnist_files()
    use_source("mnist", files, [closed_port_url(), closed_port_url()])
    with pytest.raises(DataError) as e:
        load_dataset(cfg("mnist", tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and "`sweep data fetch mnist`" in msg and "Connection refused" in msg
    assert capsys.readouterr().err == ""  # nothing said before the error: the error is the one line


def test_a_mirror_that_never_answers_times_out(tmp_path: Path, use_source, monkeypatch) -> None:
    files, _ = mnist_files()
    monkeypatch.setattr(dl, "TIMEOUT_S", 0.5)
    with silent_port_url() as url:
        use_source("mnist", files, [url])
        with pytest.raises(DataError, match=r"no answer within 0.5 s.*`sweep data fetch mnist`"):
            load_dataset(cfg("mnist", tmp_path))


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_download_false_fails_without_a_request(name: str, tmp_path: Path, use_source) -> None:
    files = mnist_files()[0] if name == "mnist" else {"cifar-10-binary.tar.gz": cifar_archive(cifar_records())}
    with serve(Mirror(files)) as m:
        use_source(name, files, [m.url])
        with pytest.raises(DataError, match=rf"data.download=false: run `sweep data fetch {name}`"):
            load_dataset(cfg(name, tmp_path, download=False))
        assert m.requests == []
        dl.fetch(name, str(tmp_path / "cache"), log=lambda _: None)  # as `sweep data fetch` on a login node
        assert load_dataset(cfg(name, tmp_path, download=False)).num_outputs == 10  # the compute node reads it
        assert len(m.requests) == len(files)


def test_root_set_reads_the_users_files_and_downloads_nothing(tmp_path: Path, use_source) -> None:
    files, arrays = mnist_files()
    root = tmp_path / "mine"
    root.mkdir()
    for n, b in files.items():
        (root / n).write_bytes(b"\0" + b[1:] if n.startswith("t10k-labels") else b)  # not the checksummed bytes
    with serve(Mirror(files)) as m:
        use_source("mnist", files, [m.url])
        with pytest.raises(DataError, match="t10k-labels"):  # read as it is: its own error, no download
            load_dataset(cfg("mnist", tmp_path, root=str(root)))
        (root / "t10k-labels-idx1-ubyte.gz").write_bytes(files["t10k-labels-idx1-ubyte.gz"])
        ds = load_dataset(cfg("mnist", tmp_path, root=str(root)))
        assert m.requests == []
    assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))


def test_a_file_url_mirror_serves_a_shared_folder(tmp_path: Path, use_source) -> None:
    """data.mirror=file:///shared/folder/ (a course's copy on a shared file system) works as an HTTP mirror does."""
    files, arrays = mnist_files()
    shared = tmp_path / "shared"
    shared.mkdir()
    for n, b in files.items():
        (shared / n).write_bytes(b)
    use_source("mnist", files, [closed_port_url()])
    ds = load_dataset(cfg("mnist", tmp_path, mirror=shared.as_uri() + "/"))
    assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))


# --- the command --------------------------------------------------------------------------------------------------
def fetch_cli(args: list[str], inject: dict[str, bytes] | None = None) -> subprocess.CompletedProcess:
    """`sweep.cli.main(ARGS)` in a subprocess (as `python -m sweep.cli ARGS`), with mnist's standard mirrors
    dropped (so nothing reaches the internet) and, given `inject`, the checksum table of these files in place
    of the real one."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = (
        "import json, sys; from sweep.data import download as d; t = json.loads(sys.argv[1]); "
        "d.SOURCES['mnist'] = d.Source({n: d.FileSpec(*v) for n, v in t.items()} if t else d.SOURCES['mnist'].files, "
        "()); from sweep.cli import main; main(sys.argv[2:])"
    )
    t = {n: [v.size, v.sha256] for n, v in table(inject).items()} if inject else {}
    cmd = [sys.executable, "-c", code, json.dumps(t), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=REPO)


def test_cli_data_fetch_end_to_end(tmp_path: Path, use_source) -> None:
    files, arrays = mnist_files()
    cache = tmp_path / "cache"
    args = ["data", "fetch", "mnist", "--cache-dir", str(cache)]
    with serve(Mirror(files)) as m:
        p = fetch_cli([*args, "--mirror", m.url], inject=files)
        assert p.returncode == 0, p.stderr
        assert str(cache / "datasets" / "mnist") in p.stdout and sorted(m.names()) == sorted(files)
        # A compute node without network then trains from the cache.
        use_source("mnist", files, [closed_port_url()])
        ds = load_dataset(DataConfig(name="mnist", cache_dir=str(cache), download=False))
        assert torch.equal(ds.x_train, pixels(arrays[IDX_NAMES[0]]))

        # The real table refuses these files (they are not MNIST): exit 2, one line naming the file and the mirror.
        for f in files:
            (cache / "datasets" / "mnist" / f).unlink()
        p = fetch_cli([*args, "--mirror", m.url, "--timeout", "2"])
    assert p.returncode == 2 and p.stderr.count("sweep: error:") == 1, p.stderr
    (error,) = [ln for ln in p.stderr.splitlines() if ln.startswith("sweep: error:")]
    assert f"{m.url}train-images-idx3-ubyte.gz: the mirror serves" in error and "refused" in error
    assert not any(f in files for f in os.listdir(cache / "datasets" / "mnist"))


def test_cli_data_fetch_refuses_an_unknown_dataset() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "data", "fetch", "imagenet"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    assert p.returncode == 2 and "invalid choice: 'imagenet'" in p.stderr
