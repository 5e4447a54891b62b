"""Every plot function in one import: `from analysis.plots import plot_lr_sensitivity, PLOTS, Sweep`."""
from analysis import NAMES
from analysis._common import Skip, Sweep
from analysis.batch_size import plot_batch_size
from analysis.init import plot_init
from analysis.learning_curves import plot_learning_curves
from analysis.lr_sensitivity import plot_lr_sensitivity
from analysis.restarts import plot_restarts
from analysis.sampling import plot_sampling
from analysis.schedules import plot_schedules

PLOTS = {n: globals()[f"plot_{n}"] for n in NAMES}

__all__ = ["PLOTS", "Skip", "Sweep", *[f"plot_{n}" for n in NAMES]]
