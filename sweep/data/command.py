"""`sweep data fetch NAME`: download a dataset into the shared cache ahead of training (on a login node: compute
nodes often have no network).

Contract:
- Fetches what training would (`sweep.data.download.fetch`, same cache folder for the same --cache-dir /
  data.cache_dir), and rehashes the files already there, replacing any that fail their checksum.
- Prints where the verified files are; any failure is `sweep: error: <one line>` and exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .download import SOURCES, TIMEOUT_S, fetch


def main(argv: Sequence[str] | None = None) -> None:
    from sweep.errors import DataError, fail

    p = argparse.ArgumentParser(prog="sweep data", description="Download datasets into the shared cache.")
    sub = p.add_subparsers(dest="action", required=True, metavar="fetch")
    f = sub.add_parser(
        "fetch",
        help="download and verify a dataset",
        description="Download a dataset into the cache training reads, verifying each file's SHA-256. Run it "
        "where there is network (a login node) before a sweep on nodes without.",
    )
    f.add_argument("name", choices=sorted(SOURCES), help="the dataset (as in data=NAME)")
    f.add_argument("--mirror", metavar="URL", help="base URL of a copy of your own, tried before the standard ones")
    f.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache folder (as data.cache_dir); default $XDG_CACHE_HOME/sweep or ~/.cache/sweep",
    )
    f.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_S,
        metavar="S",
        help=f"seconds per connect or read (default {TIMEOUT_S:g})",
    )
    a = p.parse_args(list(argv) if argv is not None else None)
    try:
        folder = fetch(a.name, a.cache_dir, a.mirror, verify=True, timeout=a.timeout)
    except DataError as e:
        fail(str(e))
    n = len(SOURCES[a.name].files)
    print(f"{a.name}: {n} verified file(s) in {folder}")
    if a.cache_dir:
        print(f"train with data={a.name} data.cache_dir={a.cache_dir}")
