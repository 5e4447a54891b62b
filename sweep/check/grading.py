"""Running the checks of a `--like` on a student's class, and naming the likely cause of a failure."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sweep.check.cases import Check, Like, checks_for, faulty_class, torch_defaults
from sweep.check.harness import CAUSE_WINDOW, STEPS, Comparison, Run, compare
from sweep.deadline import time_limit


# ------------------------------------------------------------------------------------------------ running it
@dataclass
class Result:
    """A check's outcome: the student's run, the comparisons with both references, and the likely cause."""

    check: Check
    student: Run
    reference: Run
    vs_torch: Comparison
    vs_sweep: Comparison
    cause: str | None = None
    skipped: str | None = None  # why the student's class could not run this check (an argument it lacks)

    @property
    def passed(self) -> bool:
        """No failure: it agreed with torch.optim, or could not run (SKIPPED, said in the table)."""
        return self.skipped is not None or (self.vs_torch.first is None and self.student.blew_up is None)


def likely_cause(like: Like, result: Result, failed_plain: bool) -> str | None:
    """The cause named by the first faulty optimizer that follows the student from the start to CAUSE_WINDOW
    steps past where the student parts from torch.optim, else a cause read from which checks failed."""
    check, student, first = result.check, result.student, result.vs_torch.first
    window = min(STEPS, (first[0] if first else 0) + CAUSE_WINDOW)
    for fault in like.faults:
        if not fault.applies({**torch_defaults(like.torch_cls), **check.kwargs}):  # AdamW decays by default
            continue
        if fault.lr_changes_only and not check.lr_change:
            continue
        cls = faulty_class(like, fault)
        # the faulty run only has to reach the end of the window it is compared over
        faulty = check.train(lambda ps: cls(ps, **check.kwargs), steps=window)
        if compare(student, faulty, window).first is None:
            return fault.cause
    if check.resume and not failed_plain:
        return (
            "state lost across state_dict()/load_state_dict(): keep every per-parameter quantity "
            "(step count, averages) in self.state[p]"
        )
    if check.lr_change and not failed_plain:
        return (
            "the learning rate read once (kept from __init__, or folded into a buffer): read group['lr'] at "
            "every step, a schedule changes it between steps"
        )
    if check.sometimes and not failed_plain:
        return (
            "a parameter with grad None was updated, or a step count shared by all parameters advanced for "
            "it: skip p.grad is None and keep t in self.state[p]"
        )
    return None


def run_checks(
    student_cls: type[torch.optim.Optimizer],
    like: Like,
    skip: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> list[Result]:
    """Every check of `like` on the student's class; causes are looked for on failures only (they cost runs).
    `skip`: check labels the class cannot run (`check_constructor`), each with why: shown, not run.
    `timeout_s`: the student's run of one check taking longer raises StepTimeout (a hang)."""
    results = []
    skip = skip or {}
    for check in checks_for(like):
        if check.label in skip:
            empty = Run()
            nothing = Comparison(float("nan"), None)
            results.append(Result(check, empty, empty, nothing, nothing, skipped=skip[check.label]))
            continue
        kw = dict(check.kwargs)
        ref = check.train(lambda ps: like.torch_cls(ps, **kw))
        ours = check.train(lambda ps: like.sweep_cls(ps, **kw))
        with time_limit(timeout_s, f"{student_cls.__name__} in the check '{check.label}'"):
            student = check.train(lambda ps: student_cls(ps, **kw))
        results.append(Result(check, student, ref, compare(student, ref), compare(student, ours)))
    plain_failed = any(not r.passed for r in results if r.check.plain)
    for r in results:
        if not r.passed:
            r.cause = likely_cause(like, r, plain_failed)
    return results
