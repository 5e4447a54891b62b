"""A student's code run in a process of its own, so that its end (os._exit, a crash in native code) is an answer.

Contract: `in_own_process(fn, *args)` returns fn(*args) computed in a freshly spawned process (fn and args
picklable; fn importable by name), re-raises what fn raised (a SystemExit too), and raises `ProcessEnded` when the
process died without an answer. The cost is one interpreter start and its imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ProcessEnded(Exception):
    """The process running the student's code ended without returning (os._exit, a crash, a kill)."""


def in_own_process(fn: Callable[..., T], *args: Any) -> T:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            raise ProcessEnded(f"{getattr(fn, '__name__', fn)} ended its process without an answer") from None
