"""Learning curves per configuration (optimizer, schedule, ... : every swept key but the seed): the mean over the
seeds that finished with a ± standard-error band, train loss at every logged step and test loss at epoch ends,
on a log loss axis; runs that diverged or collapsed are drawn one by one (dashed, counted in the legend), never
averaged in. With many configurations the rows split by the first swept key (e.g. one row per optimizer).

    python -m sweep.analysis.learning_curves SWEEP [-o out.png]
"""

from __future__ import annotations

import pandas as pd

from sweep.analysis._common import (
    AGGREGATE,
    BLOWN_UP,
    Coincident,
    Skip,
    Sweep,
    blown_up_note,
    cli,
    fit_title,
    group_label,
    groups,
    legend_outside,
    legend_title,
    log_y,
    mean_se_by,
    new_figure,
    plot_function,
    se_band,
    share_log_y,
    short,
    unit_interval,
)
from sweep.analysis._common import palette as group_colors

MAX_LINES = 8
MAX_ROWS = 6
FACET_FIRST = ("optimizer.name", "schedule.name", "init.name", "sampling", "batch_size")


def seed_mean_se(h: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean, standard error and n of `y` over the runs of `h` at each `x` (rows where y is NaN ignored)."""
    return mean_se_by(h, x, y)


def draw_curves(
    ax,
    hist: pd.DataFrame,
    runs: pd.DataFrame,
    keys: list[str],
    y: str,
    *,
    x: str = "epoch",
    palette: dict | None = None,
    label_diverged: bool = True,
) -> None:
    """Per group of `keys` (in `runs` order): the mean ± SE over its finished (done) runs, and each run that
    blew up as its own thin dashed line (drawn, and counted in the label, never averaged in)."""
    gs = groups(runs, keys)
    cols = group_colors(keys, runs, len(gs))
    drawn = Coincident()  # a student's correct Adam lies exactly on torch's: both must show
    for (vals, g), c in zip(gs, cols):
        c = palette.get(vals, c) if palette else c
        h = hist[hist["run_id"].isin(g.loc[g["status"] == "done", "run_id"])]
        label = group_label(keys, vals, runs)
        note = blown_up_note(g, of=len(g))
        if note and label_diverged:
            label += f" ({note}, dashed)"
        stats = seed_mean_se(h, x, y)
        if not stats.empty:
            name = label
            label, style = drawn.style(stats.index, stats["mean"], label)
            (line,) = ax.plot(stats.index, stats["mean"], color=c, label=label, **style)
            drawn.add(stats.index, stats["mean"], name, line)
            se_band(ax, stats.index, stats["mean"], stats["se"], c)
            label = None
        for rid in g.loc[g["status"].isin(BLOWN_UP), "run_id"]:
            one = hist.loc[hist["run_id"] == rid, [x, y]].dropna()
            if len(one):
                ax.plot(one[x], one[y], color=c, linestyle="--", linewidth=1.0, alpha=0.7, label=label)
                label = None
        if label is not None and note and label_diverged:
            # nothing to draw (every run blew up before a finite loss was logged): still in the legend, never
            # dropped silently
            ax.plot(
                [], [], color=c, linestyle="--", linewidth=1.0, label=label.replace(", dashed)", ", no finite loss)")
            )


def _facets(sw: Sweep) -> tuple[str | None, list[str]]:
    keys = sw.config_keys
    n = len(groups(sw.runs, keys)) if keys else 1
    if n <= MAX_LINES or len(keys) < 2:
        return None, keys
    facet = next((k for k in FACET_FIRST if k in keys), keys[0])
    return facet, [k for k in keys if k != facet]


@plot_function("learning_curves")
def plot_learning_curves(sw: Sweep, metrics: tuple[str, ...] = ("train_loss", "test_loss")):
    """Learning curves per optimizer/schedule: mean ± SE over finished seeds, blow-ups dashed, log loss axis."""
    hist = sw.history
    if hist.empty:
        raise Skip("no run has a history.parquet yet")
    metrics = tuple(m for m in metrics if m in hist and hist[m].notna().any())
    facet, hue = _facets(sw)
    rows = [(None, sw.runs)] if facet is None else [(vals[0], g) for vals, g in groups(sw.runs, [facet])][:MAX_ROWS]
    fig, axes = new_figure(ncols=len(metrics), nrows=len(rows), width=5.4, height=3.6 if facet else 4.2)
    names = {
        "train_loss": "train loss (mean per logging interval)",
        "test_loss": "test loss (at epoch ends)",
        "test_acc": "test accuracy (at epoch ends)",
    }
    # one colour per hue value across all rows
    all_groups = [vals for vals, _ in groups(sw.runs, hue)]
    colours = dict(zip(all_groups, group_colors(hue, sw.runs, len(all_groups))))
    for r, (fval, fruns) in enumerate(rows):
        for c, m in enumerate(metrics):
            ax = axes[r][c]
            draw_curves(ax, hist, fruns, hue, m, palette=colours)
            if m.endswith("loss") and (hist[m] > 0).any():
                log_y(ax)
            ax.set_ylabel(f"{m.replace('_', ' ')} ({sw.loss_unit})" if m.endswith("loss") else m.replace("_", " "))
            if r == len(rows) - 1:
                ax.set_xlabel("epoch (passes over the training set)")
            title = names.get(m, m)
            if facet is not None:
                title = f"{short(facet)}={group_label([facet], (fval,), sw.runs)}: " + title.split(" (")[0]
            fit_title(ax, title)
        legend_outside(axes[r][-1], legend_title(hue) if hue else None)
    for c, m in enumerate(metrics):  # each column one y range, so rows (facets) compare by eye
        column = [axes[r][c] for r in range(len(rows))]
        if all(ax.get_yscale() == "log" for ax in column):
            share_log_y(column)
        elif m.endswith("acc"):
            for ax in column:
                unit_interval(ax)
    extra = (
        ""
        if facet is None or len(rows) == len(groups(sw.runs, [facet]))
        else f" (first {MAX_ROWS} {short(facet)} values)"
    )
    fig.suptitle(
        f"Learning curves: {AGGREGATE} over finished seeds, diverged/collapsed runs dashed{extra}\n{sw.describe()}"
    )
    return fig


if __name__ == "__main__":
    cli(plot_learning_curves)
