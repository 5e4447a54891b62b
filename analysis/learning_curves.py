"""Learning curves per configuration (optimizer, schedule, ... : every swept key but the seed): the median over
seeds with a min-max band, train loss at every logged step and test loss at epoch ends, on a log loss axis.
With many configurations the rows split by the first swept key (e.g. one row per optimizer).

    python -m analysis.learning_curves SWEEP [-o out.png]
"""
from __future__ import annotations

import pandas as pd

from analysis._common import (Skip, Sweep, blown_up_note, cli, colors, group_label, groups, legend_outside,
                              legend_title, log_y, new_figure, plot_function, short)

MAX_LINES = 8
MAX_ROWS = 6
FACET_FIRST = ("optimizer.name", "schedule.name", "init.name", "sampling", "batch_size")


def seed_band(h: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Median, min and max of `y` over the runs of `h` at each `x` (rows where y is NaN are ignored)."""
    d = h[[x, y]].dropna()
    if d.empty:
        return pd.DataFrame(columns=["median", "min", "max", "n"])
    return d.groupby(x)[y].agg(["median", "min", "max", "count"]).rename(columns={"count": "n"})


def draw_curves(ax, hist: pd.DataFrame, runs: pd.DataFrame, keys: list[str], y: str, *, x: str = "epoch",
                palette: dict | None = None, label_diverged: bool = True) -> None:
    """One median line with a min-max band per group of `keys` (groups in `runs` order)."""
    gs = groups(runs, keys)
    cols = colors(len(gs))
    for (vals, g), c in zip(gs, cols):
        c = palette.get(vals, c) if palette else c
        h = hist[hist["run_id"].isin(g["run_id"])]
        band = seed_band(h, x, y)
        if band.empty:
            continue
        label = group_label(keys, vals, runs)
        note = blown_up_note(g, of=len(g))     # diverged and collapsed runs are in the band: say how many
        if note and label_diverged:
            label += f" ({note})"
        ax.plot(band.index, band["median"], color=c, label=label)
        if len(g) > 1:
            ax.fill_between(band.index, band["min"], band["max"], color=c, alpha=0.18, linewidth=0)


def _facets(sw: Sweep) -> tuple[str | None, list[str]]:
    keys = sw.config_keys
    n = len(groups(sw.runs, keys)) if keys else 1
    if n <= MAX_LINES or len(keys) < 2:
        return None, keys
    facet = next((k for k in FACET_FIRST if k in keys), keys[0])
    return facet, [k for k in keys if k != facet]


@plot_function("learning_curves")
def plot_learning_curves(sw: Sweep, metrics: tuple[str, ...] = ("train_loss", "test_loss")):
    """Learning curves per optimizer/schedule: median over seeds with a min-max band, log loss axis."""
    hist = sw.history
    if hist.empty:
        raise Skip("no run has a history.parquet yet")
    metrics = tuple(m for m in metrics if m in hist and hist[m].notna().any())
    facet, hue = _facets(sw)
    rows = [(None, sw.runs)] if facet is None else \
        [(vals[0], g) for vals, g in groups(sw.runs, [facet])][:MAX_ROWS]
    fig, axes = new_figure(ncols=len(metrics), nrows=len(rows), width=5.4, height=3.6 if facet else 4.2)
    names = {"train_loss": "train loss (mean over each logging interval)", "test_loss": "test loss (epoch ends)",
             "test_acc": "test accuracy (epoch ends)"}
    # one colour per hue value across all rows
    all_groups = [vals for vals, _ in groups(sw.runs, hue)]
    palette = dict(zip(all_groups, colors(len(all_groups))))
    for r, (fval, fruns) in enumerate(rows):
        for c, m in enumerate(metrics):
            ax = axes[r][c]
            draw_curves(ax, hist, fruns, hue, m, palette=palette)
            if m.endswith("loss") and (hist[m] > 0).any():
                log_y(ax)
            ax.set_ylabel(f"{m.replace('_', ' ')} ({sw.loss_unit})" if m.endswith("loss") else m.replace("_", " "))
            if r == len(rows) - 1:
                ax.set_xlabel("epoch (passes over the training set)")
            title = names.get(m, m)
            if facet is not None:
                title = f"{short(facet)}={group_label([facet], (fval,), sw.runs)}: " + title.split(" (")[0]
            ax.set_title(title, loc="left")
        legend_outside(axes[r][-1], legend_title(hue) if hue else None)
    extra = "" if facet is None or len(rows) == len(groups(sw.runs, [facet])) else \
        f" (first {MAX_ROWS} {short(facet)} values)"
    fig.suptitle(f"Learning curves: median over seeds, band = min-max over seeds{extra}\n{sw.describe()}")
    return fig


if __name__ == "__main__":
    cli(plot_learning_curves)
