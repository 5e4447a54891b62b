"""Plots of a sweep's results (matplotlib, Agg backend).

Each plot is a function `plot_<name>(sweep, out=None)`: `sweep` is a sweep folder (or an `analysis.Sweep`, to load
it once for several plots); it returns the Figure, or the path written when `out` is given, or None when the
sweep lacks what the plot needs (the reason is in `plot_<name>.last_skip`). Each is also a command:

    python -m sweep.analysis.<name> SWEEP [-o out.png]       (default: SWEEP/report/<name>.png)

    lr_sensitivity   final loss vs learning rate per optimizer        needs lr swept
    tuned            each optimizer at its lr chosen on validation    needs optimizer and lr swept
    learning_curves  loss vs epoch per configuration                  any sweep with histories
    batch_size       final loss and wall time vs batch size           needs batch_size swept
    init             initialisations compared                         needs init (or init.std, ...) swept
    depth            activation scale through depth at initialisation needs init (or init.std, ...) swept
    sampling         sampling modes compared                          needs sampling swept
    restarts         spread of the final loss over seeds              needs seed swept
    schedules        lr(t) and loss per learning-rate schedule        needs schedule (or schedule.*) swept
    annealing        loss vs loss evaluations, annealing vs gradients needs optimizer swept with anneal among them
    best_of_k        spread over restarts and expected best of k      needs >= 5 seeds (and a validation split)
    gradient_noise   minibatch gradient variance vs batch size (1/B)  needs batch_size swept
    search           best so far vs model-epochs, param importances   needs a search (search=random|tpe)

`analysis.PLOTS` maps each name to its function (what `sweep report` draws).
"""

from __future__ import annotations

import importlib
from typing import Any

NAMES = (
    "lr_sensitivity",
    "tuned",
    "learning_curves",
    "batch_size",
    "init",
    "depth",
    "sampling",
    "restarts",
    "schedules",
    "annealing",
    "best_of_k",
    "gradient_noise",
    "search",
)
_FUNCTIONS = {f"plot_{n}": n for n in NAMES}

__all__ = ["PLOTS", "Skip", "Sweep", *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m sweep.analysis.<name>` does not import its module twice (runpy warns about that).
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"sweep.analysis.{_FUNCTIONS[name]}"), name)
    if name == "PLOTS":
        return {n: getattr(importlib.import_module(f"sweep.analysis.{n}"), f"plot_{n}") for n in NAMES}
    if name in ("Skip", "Sweep"):
        return getattr(importlib.import_module("sweep.analysis._common"), name)
    raise AttributeError(f"module 'sweep.analysis' has no attribute {name!r}")
