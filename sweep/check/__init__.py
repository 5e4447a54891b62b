"""`sweep check MODULE.CLS --like adam`: is a student's optimizer a drop-in for torch.optim's?

The student's class and the references (torch.optim's class, and sweep.optim's from-scratch one) train copies of
one small float64 MLP from the same initialisation on the same minibatches, for a handful of hyperparameter
cases per `--like`, across a state_dict save/load mid-way, with the lr changed mid-way (as a schedule does), and
with one layer that has no gradient on odd steps.
Each check passes when every parameter after every step is within RTOL (relative) of torch.optim's. A failing
check names the first step and parameter where the trajectories part, and a likely cause: the first of the
deliberately wrong optimizers of that family (Adam without bias correction, AdamW's decay without lr, SGD's
dampening on the first step, RMSprop's alpha swapped, an argument such as maximize ignored, ...) that follows
the student's trajectory over its first steps. The cases set every argument of torch's class that changes the
maths to a non-default value somewhere; a class that lacks one is graded on the rest, that check SKIPPED.

Exit status: 0 every check passed, 1 some failed (or the class hung or ended its process), 2 bad input (one line on
stderr, sweep.errors.fail).

The package: harness (the problem, `train`, `compare`), mistakes (deliberately wrong optimizers), cases (what each
`--like` checks), grading (`run_checks`, `likely_cause`), report (table and curves), cli (`main`).
"""

from __future__ import annotations

from sweep.check.cases import LIKES, Check, Like, checks_for, faulty_class, torch_defaults
from sweep.check.cli import check_constructor, load_class, main
from sweep.check.grading import Result, likely_cause, run_checks
from sweep.check.harness import (
    BATCH,
    CAUSE_WINDOW,
    CHECK_TIMEOUT_S,
    CLASSES,
    D_IN,
    HIDDEN,
    LR_CHANGE,
    MLP,
    PARAM_NAMES,
    RESUME_AT,
    RTOL,
    STEPS,
    Comparison,
    N,
    Run,
    Trajectory,
    compare,
    problem,
    rel_diff,
    train,
)
from sweep.check.mistakes import Fault, faulty_adagrad, faulty_adam, faulty_rmsprop, faulty_sgd
from sweep.check.report import plot, report

__all__ = [
    "BATCH",
    "CAUSE_WINDOW",
    "CHECK_TIMEOUT_S",
    "CLASSES",
    "D_IN",
    "HIDDEN",
    "LIKES",
    "LR_CHANGE",
    "MLP",
    "PARAM_NAMES",
    "RESUME_AT",
    "RTOL",
    "STEPS",
    "Check",
    "Comparison",
    "Fault",
    "Like",
    "N",
    "Result",
    "Run",
    "Trajectory",
    "check_constructor",
    "checks_for",
    "compare",
    "faulty_adagrad",
    "faulty_adam",
    "faulty_class",
    "faulty_rmsprop",
    "faulty_sgd",
    "likely_cause",
    "load_class",
    "main",
    "plot",
    "problem",
    "rel_diff",
    "report",
    "run_checks",
    "torch_defaults",
    "train",
]
