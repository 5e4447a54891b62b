"""`sweep check`'s command line: import the student's class, construct it, grade it in a process of its own."""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import torch

from sweep.check.cases import LIKES, Like, checks_for
from sweep.check.grading import run_checks
from sweep.check.harness import CHECK_TIMEOUT_S, RTOL, _raised
from sweep.check.report import plot, report
from sweep.deadline import StepTimeout
from sweep.errors import described, fail
from sweep.isolation import ProcessEnded, in_own_process
from sweep.optim.custom import import_student_module


# ------------------------------------------------------------------------------------------------ input
def load_class(spec: str) -> type[torch.optim.Optimizer]:
    """MODULE.CLS imported as `python -m` finds modules (the current directory first, then PYTHONPATH), checked
    to be a torch.optim.Optimizer subclass; anything else is a one-line error (exit 2)."""
    module_name, dot, attr = spec.rpartition(".")
    if not dot or not module_name or not attr:
        fail(f"'{spec}' is not MODULE.CLASS: write e.g. `sweep check myopt.MyAdam --like adam` beside myopt.py")
    try:
        module = import_student_module(module_name)
    except (Exception, SystemExit) as e:  # the student's module may raise anything (or exit) while it imports
        what = _raised(e) if isinstance(e, SystemExit) else described(e)
        fail(f"cannot import module '{module_name}' (for {spec}): {what}")
    if not hasattr(module, attr):
        found = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isclass(v) and issubclass(v, torch.optim.Optimizer) and v.__module__ == module_name
        )
        fail(
            f"module '{module_name}' ({getattr(module, '__file__', '?')}) has no attribute '{attr}'"
            + (f"; its optimizers: {', '.join(found)}" if found else "")
        )
    cls = getattr(module, attr)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        kind = "a class" if inspect.isclass(cls) else f"a {type(cls).__name__}"
        fail(f"{spec} is {kind}, not a torch.optim.Optimizer subclass")
    return cls


def check_constructor(spec: str, cls: type[torch.optim.Optimizer], like_name: str, like: Like) -> dict[str, str]:
    """Construct `cls` with every check's kwargs on a dummy parameter. The first case (the defaults) must
    construct, else bad input (one line, exit 2); a later case it rejects (an argument it lacks, such as an Adam
    without `amsgrad`) is returned as {check label: why}, shown SKIPPED and not graded."""
    names = list(dict.fromkeys(k for c in like.cases for k in {"lr": 0, **like.fixed, **c}))
    checks = checks_for(like)[: len(like.cases)]
    skip = {}
    for i, check in enumerate(checks):
        try:
            cls([torch.zeros(2, dtype=torch.float64, requires_grad=True)], **check.kwargs)
        except (Exception, SystemExit) as e:
            args = ", ".join(f"{k}={v}" for k, v in check.kwargs.items())
            if i == 0:
                fail(
                    f"{spec}({args}) {_raised(e)}; the --like {like_name} checks "
                    f"pass {', '.join(names)} as torch.optim.{like.torch_cls.__name__} takes them"
                )
            skip[check.label] = f"{cls.__name__}({args}) {_raised(e)}"
    return skip


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are sweep's one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (usage: sweep check MODULE.CLS --like {{{','.join(LIKES)}}} [--plot PNG])")


def main(argv: Sequence[str] | None = None) -> None:
    p = _Parser(
        prog="sweep check",
        description="Check a torch.optim.Optimizer subclass against torch.optim and "
        "sweep.optim: same MLP, same batches, float64; exit 0 when every check agrees to rtol "
        f"{RTOL:g}, 1 otherwise.",
    )
    p.add_argument("cls", metavar="MODULE.CLS", help="e.g. myopt.MyAdam (myopt.py in the current directory)")
    p.add_argument("--like", required=True, metavar="NAME", help=f"the reference: {', '.join(LIKES)}")
    p.add_argument("--plot", metavar="PNG", help="draw the student's and torch.optim's loss curves to PNG")
    p.add_argument(
        "--timeout",
        type=float,
        default=CHECK_TIMEOUT_S,
        metavar="S",
        help=f"seconds the student's optimizer may take for one check before it counts as hung ({CHECK_TIMEOUT_S:g})",
    )
    a = p.parse_args(list(argv) if argv is not None else None)
    if a.like not in LIKES:
        fail(f"unknown --like '{a.like}'; choices: {', '.join(LIKES)}")
    if a.plot and not os.path.isdir(os.path.dirname(os.path.abspath(a.plot))):  # say so before, not after, the runs
        fail(f"--plot {a.plot}: the folder {os.path.dirname(os.path.abspath(a.plot))} does not exist")
    sys.exit(_in_own_process(_grade, a.cls, a.like, a.plot, a.timeout))


def _in_own_process(fn: Callable[..., int], spec: str, *args: Any) -> int:
    """fn(spec, *args) in a spawned process of its own, its exit status: a student's code that ends its process
    (os._exit, a crash in native code) ended `sweep check` with status 0 and no output, a pass; now a FAIL."""
    try:
        return in_own_process(fn, spec, *args)  # fail()'s SystemExit(2) comes back raised, as it was
    except ProcessEnded:
        print(f"sweep check: FAIL: {spec} ended the checking process without a word (os._exit, or a crash)",
              file=sys.stderr)  # fmt: skip
        return 1


def _grade(spec: str, like_name: str, plot_to: str | None, timeout_s: float) -> int:
    """Import, construct and grade the student's class; print the report (and draw --plot). 0: every check
    passed; 1: one failed or the class hung; bad input raises fail()'s SystemExit(2)."""
    like = LIKES[like_name]
    torch.set_num_threads(1)  # tensors of a few hundred entries (benchmarks/README.md, "Threads")
    cls = load_class(spec)
    skip = check_constructor(spec, cls, like_name, like)
    try:
        results = run_checks(cls, like, skip, timeout_s=timeout_s)
    except StepTimeout as e:
        print(f"sweep check: FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    print(report(spec, like_name, like, results), flush=True)
    if plot_to:
        plot(results, spec, f"torch.optim.{like.torch_cls.__name__}", plot_to)
        print(f"loss curves: {plot_to}", flush=True)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    main()
