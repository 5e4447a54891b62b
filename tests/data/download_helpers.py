"""Helpers of tests/data/test_download.py: small archives in the real formats, and an HTTP server on 127.0.0.1
that serves them the way a mirror can fail (404, wrong bytes, a dropped connection, Range requests)."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import struct
import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from sweep.data.download import FileSpec

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_MEMBERS = (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def mnist_files(seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """({file name: gzipped IDX bytes} as a mirror serves them, {IDX name: array}): 6 train, 4 test images."""
    g = np.random.default_rng(seed)
    arrays = {
        IDX_NAMES[0]: g.integers(0, 256, (6, 28, 28)),
        IDX_NAMES[1]: g.integers(0, 10, 6),
        IDX_NAMES[2]: g.integers(0, 256, (4, 28, 28)),
        IDX_NAMES[3]: g.integers(0, 10, 4),
    }
    # mtime=0: the same arrays always give the same bytes (and checksums).
    return {f"{n}.gz": gzip.compress(idx_bytes(a), mtime=0) for n, a in arrays.items()}, arrays


def tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def cifar_records(seed: int = 0, per_batch: int = 3) -> dict[str, np.ndarray]:
    """member name -> uint8 [per_batch, 3073] records (label byte, then 3072 pixels)."""
    g = np.random.default_rng(seed)
    out = {}
    for m in CIFAR_MEMBERS:
        rec = g.integers(0, 256, (per_batch, 3073)).astype(np.uint8)
        rec[:, 0] = g.integers(0, 10, per_batch)
        out[m] = rec
    return out


def cifar_archive(records: dict[str, np.ndarray], extra: dict[str, bytes] | None = None, **kw) -> bytes:
    members = {f"{CIFAR_DIR}/{m}": r.tobytes() for m, r in records.items()}
    return tar_gz({**members, **(extra or {})}, **kw)


def table(files: dict[str, bytes]) -> dict[str, FileSpec]:
    """The checksum table of `files`, as sweep.data.download keeps one for the real ones."""
    return {n: FileSpec(len(b), hashlib.sha256(b).hexdigest()) for n, b in files.items()}


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once (what 'no network' looks like)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@contextmanager
def silent_port_url() -> Iterator[str]:
    """A URL on 127.0.0.1 whose server accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


@dataclass
class Mirror:
    """What the server serves: `files` by name; `missing` names answer 404; `corrupt` names get other bytes of the
    same length; `drop_after[name]` bytes are sent (after a full Content-Length) before the connection is cut;
    `no_range` ignores Range headers. `requests` records (name, Range header or None) of every GET, in order;
    `before_body(name)` runs before each body is sent."""

    files: dict[str, bytes]
    missing: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)
    drop_after: dict[str, int] = field(default_factory=dict)
    no_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    before_body: Callable[[str], None] | None = None
    url: str = ""

    def names(self) -> list[str]:
        return [n for n, _ in self.requests]


@contextmanager
def serve(mirror: Mirror, prefix: str = "/data/") -> Iterator[Mirror]:
    """Serve `mirror` from a thread on 127.0.0.1 (random port) under `prefix`; `mirror.url` is its base URL."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            name = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
            rng = self.headers.get("Range")
            with lock:
                mirror.requests.append((name, rng))
            if name not in mirror.files or name in mirror.missing:
                self.send_error(404)
                return
            body = mirror.files[name]
            if name in mirror.corrupt:
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            start = 0
            if rng and not mirror.no_range and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(body):
                    self.send_error(416)
                    return
            if mirror.before_body:
                mirror.before_body(name)
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = mirror.drop_after.get(name)
            if cut is not None:
                self.wfile.write(body[start : start + cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body[start:])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
