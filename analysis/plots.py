"""Every plot function in one import: `from analysis.plots import plot_lr_sensitivity, PLOTS, Sweep`."""

from analysis import NAMES
from analysis._common import Skip, Sweep

PLOTS = {n: globals()[f"plot_{n}"] for n in NAMES}

__all__ = ["PLOTS", "Skip", "Sweep", *[f"plot_{n}" for n in NAMES]]
