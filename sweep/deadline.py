"""A wall-clock limit on a block of a student's code (its optimizer's step), so a hang fails its own runs.

Contract:
- `time_limit(seconds, what)` raises `StepTimeout` ("<what> took longer than <seconds> s ...") inside the block
  once `seconds` have passed; the block's own exceptions pass through unchanged.
- It works through SIGALRM, so only in the main thread, and it interrupts Python code and sleeps but not a C call
  that never returns to the interpreter. Elsewhere (another thread, `seconds` falsy or not positive) it is a
  no-op: the block runs unlimited, as it always did.
- A SIGALRM handler installed by someone else is restored afterwards.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StepTimeout(Exception):
    """A student's code ran past its time limit (a hang, or a step far slower than it should be)."""


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    if (
        not seconds
        or not seconds > 0
        or math.isinf(seconds)
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise StepTimeout(f"{what} took longer than {seconds:g} s: a hang? (the limit is step_timeout_s)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
