"""Download a dataset's archives once per shared cache, verified, as torchvision's `download=True` does.

Contract:
- `SOURCES[name]` lists a dataset's files, each with its size and SHA-256, and the mirrors serving them, tried in
  order (a `mirror` passed to `fetch` is tried before them).
- `fetch(name, ...)` returns the folder `cache_root(cache_dir)/datasets/<name>` holding every file of the dataset
  under its own name. A file gets its name only by `os.replace` of a download whose size and SHA-256 matched the
  table, so a name present (with the right size) is a verified file; a killed download leaves only `<file>.part`,
  which is never read as data.
- Downloads happen under a file lock in that folder: of many processes sharing the cache (a SLURM array), one
  downloads and the others wait, then read its files. Nothing is downloaded twice.
- A `.part` left by a killed download is resumed with an HTTP Range request; it is restarted from its first byte
  when the server ignores the range or the resumed file fails verification.
- Each connect and each read waits at most `timeout` seconds, and each mirror is tried once per call: without a
  network the call fails in seconds, never hangs or retries forever.
- Every failure is one `DataError` line naming the file, each mirror tried and why it failed, and the command
  that fetches the data (`sweep data fetch NAME`). A file that fails verification is deleted, never kept.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .cache import cache_root
from .config import DataError

TIMEOUT_S = 15.0  # seconds per connect and per read: long enough for a slow mirror, short enough to fail fast
CHUNK = 1 << 20  # bytes read and hashed at a time: the archives are streamed, never held whole in memory
LOCK_FILE = ".lock"
PART_SUFFIX = ".part"


@dataclass(frozen=True)
class FileSpec:
    """What a downloaded file must be: exactly `size` bytes with SHA-256 `sha256` (lowercase hex)."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Source:
    """A dataset's files (name -> FileSpec) and the base URLs serving them, in the order they are tried."""

    files: Mapping[str, FileSpec]
    mirrors: tuple[str, ...]


# Sizes and SHA-256 of the upstream files, from TensorFlow Datasets' checksum tables (github.com/tensorflow/datasets,
# tensorflow_datasets/url_checksums/{mnist,fashion_mnist,cifar10}.txt: url, size, sha256). MD5s are not used: the
# MD5s torchvision lists identify the same files but cannot guard against a crafted substitute.
_MNIST = {
    "train-images-idx3-ubyte.gz": FileSpec(9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": FileSpec(28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": FileSpec(1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": FileSpec(4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
_FASHION_MNIST = {
    "train-images-idx3-ubyte.gz": FileSpec(
        26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
    ),
    "train-labels-idx1-ubyte.gz": FileSpec(29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "t10k-images-idx3-ubyte.gz": FileSpec(4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "t10k-labels-idx1-ubyte.gz": FileSpec(5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}
_CIFAR10 = {
    # The binary version (fixed-size records), not the python one: reading it never unpickles anything.
    "cifar-10-binary.tar.gz": FileSpec(170052171, "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
}

# Mirrors as torchvision (torchvision/datasets/mnist.py, cifar.py) and TFDS list them. yann.lecun.com is left out:
# it has answered 403 or nothing for years, and every call would wait on it first.
SOURCES: dict[str, Source] = {
    "mnist": Source(
        _MNIST,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    ),
    "fashion_mnist": Source(
        _FASHION_MNIST,
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
    ),
    "cifar10": Source(_CIFAR10, ("https://www.cs.toronto.edu/~kriz/",)),
}


def dataset_dir(name: str, cache_dir: str | None) -> Path:
    """Where dataset `name`'s verified files live: `cache_root(cache_dir)/datasets/<name>`."""
    return cache_root(cache_dir) / "datasets" / name


def fetch(
    name: str,
    cache_dir: str | None = None,
    mirror: str | None = None,
    *,
    download: bool = True,
    verify: bool = False,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The folder holding dataset `name`'s verified files, downloading the missing ones first (see the module
    docstring). `mirror` is tried before the standard mirrors. `download=False`: a missing file is a `DataError`
    instead. `verify=True` rehashes the files already there too (and replaces any that fail). `timeout`: seconds
    per connect and per read, None = `TIMEOUT_S`."""
    source = SOURCES.get(name)
    if source is None:
        raise DataError(f"no download known for dataset {name!r}; datasets that download: {', '.join(SOURCES)}")
    mirrors = ((mirror,) if mirror else ()) + source.mirrors
    return fetch_files(
        dataset_dir(name, cache_dir),
        source.files,
        mirrors,
        what=name,
        download=download,
        verify=verify,
        timeout=timeout,
        log=log,
    )


def fetch_files(
    dest: Path,
    files: Mapping[str, FileSpec],
    mirrors: Sequence[str],
    *,
    what: str,
    download: bool = True,
    verify: bool = False,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """`fetch` for an explicit file table and mirror list (`what` names the dataset in messages): `dest` holds
    every file of `files`, each verified against its FileSpec, when this returns."""
    say = log or _stderr
    timeout = TIMEOUT_S if timeout is None else timeout  # read at call time, so that tests can shorten it
    if not verify and all(_present(dest / f, spec) for f, spec in files.items()):
        return dest  # the common case, taken by every task of an array after the first: no lock, no network
    if not download:
        raise DataError(
            f"{what} is not in the cache {dest} and data.download=false: run `sweep data fetch {what}` "
            "on a node with network (with the same data.cache_dir), or set data.root=DIR"
        )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot create the dataset cache {dest}: {e.strerror}; set data.cache_dir to a writable folder"
        ) from None
    with _locked(dest / LOCK_FILE, what, say):
        # Checked again under the lock: whoever held it before may have just downloaded what we lack.
        for fname, spec in files.items():
            final = dest / fname
            if _present(final, spec) and not (verify and _digest(final) != spec.sha256):
                continue
            if final.exists():
                say(f"{final} is not the expected file: downloading it again")
                final.unlink()
            _download(final, spec, mirrors, what=what, timeout=timeout, say=say)
    return dest


@contextmanager
def _locked(path: Path, what: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the cache folder's lock. No time limit: its holder is downloading (with its own timeouts), and the
    lock dies with its process; the wait is said once so that a queue of tasks does not look hung."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            say(f"waiting for another process downloading {what} (it holds {path})")
            lock.acquire()
    except OSError as e:
        raise DataError(
            f"cannot lock {path}: {e.strerror}; set data.cache_dir (or --cache-dir) to a folder you can write"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _stderr(msg: str) -> None:
    print(f"sweep: {msg}", file=sys.stderr, flush=True)


def _present(path: Path, spec: FileSpec) -> bool:
    try:
        return path.stat().st_size == spec.size
    except OSError:
        return False


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Mismatch(Exception):
    """The bytes received are not the file the table describes."""


def _download(
    final: Path, spec: FileSpec, mirrors: Sequence[str], *, what: str, timeout: float, say: Callable[[str], None]
) -> None:
    """Put a verified copy of `final.name` at `final`, trying `mirrors` in order; the caller holds the lock."""
    part = final.with_name(final.name + PART_SUFFIX)
    errors: list[str] = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + final.name
        for fresh in (False, True):  # a resumed download that fails is retried once from its first byte
            if fresh:
                part.unlink(missing_ok=True)
            resumed = _size(part)
            try:
                _get(url, part, spec, timeout, say)
            except _Mismatch as e:
                part.unlink(missing_ok=True)  # refused: a wrong file is never kept, not even as a part
                if resumed and not fresh:
                    continue
                errors.append(f"{url}: {e}, refused")
                say(f"{errors[-1]}; trying the next mirror")  # a bad mirror is worth knowing even when another serves
                break
            except urllib.error.HTTPError as e:
                if e.code == 416 and resumed and not fresh:  # the server cannot resume from there: start over
                    continue
                errors.append(f"{url}: HTTP {e.code} {e.reason}")
                break
            except (OSError, http.client.HTTPException) as e:
                # Network trouble: the part (if any) is kept, for the next mirror or the next call to resume.
                errors.append(f"{url}: {_why(e, timeout)}")
                break
            os.chmod(part, 0o644)
            os.replace(part, final)  # only now does the file have its name
            return
    raise DataError(
        f"cannot download {what} file {final.name}: {'; '.join(errors)}. Run `sweep data fetch {what}` on a node "
        f"with network (add --mirror URL for a copy of your own), or set data.root to a folder holding the files"
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _get(url: str, part: Path, spec: FileSpec, timeout: float, say: Callable[[str], None]) -> None:
    """Stream `url` onto `part` (resuming after the bytes already there when the server allows it), hashing as
    it goes; `_Mismatch` if the whole is not `spec`, an OSError/HTTPException if the transfer fails. Says so
    once the transfer starts: a mirror that cannot be reached adds nothing to the one error line."""
    start = _size(part)
    h = hashlib.sha256()
    if start > spec.size:
        start = 0
    if start < spec.size:
        from sweep import __version__

        headers = {"User-Agent": f"sweep/{__version__}"}
        if start:
            headers["Range"] = f"bytes={start}-"
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            ranged = getattr(resp, "status", None) == 206
            if start and not (ranged and resp.headers.get("Content-Range", "").startswith(f"bytes {start}-")):
                start = 0  # the server sent the whole file (it ignored the range): start over
            total = _announced_size(resp, start)
            if total is not None and total != spec.size:  # refused before its bytes are fetched
                raise _Mismatch(f"the mirror serves {total} bytes, not the expected {spec.size}")
            resuming = f", resuming at byte {start}" if start else ""
            say(f"downloading {url} ({spec.size / 1e6:.1f} MB{resuming})")
            with open(part, "r+b" if start else "wb") as f:
                _hash_prefix(f, start, h)
                n = start
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except http.client.IncompleteRead as e:
                        f.write(e.partial)  # keep every byte that came: a resume starts after them
                        chunk, n = b"", n + len(e.partial)
                        h.update(e.partial)
                    if not chunk:
                        break
                    n += len(chunk)
                    if n > spec.size:
                        raise _Mismatch(f"more than the expected {spec.size} bytes")
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename makes it visible
        if n < spec.size:
            # The connection ended early (cut, or a server that sent no Content-Length): the part stays for a resume.
            raise ConnectionError(f"the connection dropped after {n} of {spec.size} bytes (kept to resume)")
    else:
        with open(part, "rb") as f:  # a complete part from an earlier call, killed before its rename
            _hash_prefix(f, spec.size, h)
    if h.hexdigest() != spec.sha256:
        raise _Mismatch(f"SHA-256 {h.hexdigest()} is not the expected {spec.sha256}")


def _announced_size(resp: Any, start: int) -> int | None:
    """The whole file's size as the response states it (Content-Range's total, or start + Content-Length)."""
    try:
        if start:
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            return int(total) if total != "*" else None
        length = resp.headers.get("Content-Length")
        return int(length) if length is not None else None
    except ValueError:
        return None


def _hash_prefix(f: BinaryIO, n: int, h: Any) -> None:
    """Hash the first `n` bytes of open file `f` into `h`, leaving `f` positioned after them (and cut there)."""
    f.seek(0)
    left = n
    while left > 0:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise ConnectionError("the partial file shrank while being read")
        h.update(chunk)
        left -= len(chunk)
    if f.writable():
        f.truncate(n)


def _why(e: BaseException, timeout: float) -> str:
    if isinstance(e, TimeoutError) or (isinstance(e, urllib.error.URLError) and isinstance(e.reason, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e) or type(e).__name__
