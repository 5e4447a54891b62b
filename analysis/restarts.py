"""How much the outcome depends on the seed alone: the distribution of the final test loss (and accuracy) over
the seeds (restarts) of each configuration, each seed a dot, with the mean ± standard error and the range.

    python -m sweep.analysis.restarts SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sweep.analysis._common import (
    AGGREGATE,
    BLOWN_UP,
    Skip,
    Sweep,
    cli,
    group_label,
    groups,
    log_x,
    mean_se,
    new_figure,
    note_right,
    ordered_values,
    palette,
    plot_function,
    seed_row,
    short,
    unit_interval,
    value_label,
)
from sweep.results import SELECTION_METRIC, lower_is_better

MAX_CONFIGS = 30
MAX_COLOURED = 10  # more rows than this are coloured by their first key (`_row_colours`)


def _best_configs(gs: list) -> tuple[list, str]:
    """(at most MAX_CONFIGS groups, best first by the report's selection metric; what was left out and why, ""
    when nothing was). A configuration with no finished seed has no score: it goes first when rows are dropped,
    and the reason says how its runs ended, so that a configuration that always blows up is never dropped
    silently."""
    if len(gs) <= MAX_CONFIGS:
        return gs, ""
    sign = 1 if lower_is_better() else -1
    score = {vals: sign * mean_se(g.loc[g["status"] == "done", SELECTION_METRIC])[0] for vals, g in gs}
    ranked = sorted(gs, key=lambda t: (np.isnan(score[t[0]]), score[t[0]]))
    dropped = ranked[MAX_CONFIGS:]
    unscored = [g for vals, g in dropped if np.isnan(score[vals])]
    parts = []
    if unscored:
        ends = pd.concat(unscored)["status"].value_counts()
        how = ", ".join(f"{n} {s}" for s, n in ends.items())
        parts.append(f"{len(unscored)} with no finished seed (their runs: {how})")
    if len(dropped) > len(unscored):
        parts.append(f"{len(dropped) - len(unscored)} ranked below them")
    return ranked[:MAX_CONFIGS], "; ".join(parts)


def _row_colours(keys: list[str], runs, gs: list) -> tuple[list, dict]:
    """(a colour per row, {legend label: colour}). Up to ten rows each has its own colour (the tick labels are
    coloured alike, no legend); beyond that distinct colours of many rows get too alike to tell apart, so with
    several keys the rows are coloured by the first key (a legend says which), else each its own (never a
    repeated colour: `colors`)."""
    if len(gs) <= MAX_COLOURED or len(keys) < 2:
        return palette(keys, runs, len(gs)), {}
    first = [vals[0] for vals, _ in gs]
    values = [v for v in ordered_values(runs[keys[0]]) if v in first]
    colour_of = dict(zip(values, palette(keys[:1], runs, len(values))))
    legend = {value_label(keys[0], v, runs): colour_of[v] for v in values}
    return [colour_of[v] for v in first], legend


@plot_function("restarts")
def plot_restarts(sw: Sweep):
    """Restarts spread: the final test loss of every seed per configuration, with mean ± SE and range."""
    sw.need("seed")
    runs = sw.runs
    keys = sw.config_keys
    gs, left_out = _best_configs(groups(runs, keys))
    if not gs:
        raise Skip("no runs")
    metrics = [("final_test_loss", f"final test loss ({sw.loss_unit})", True)]
    if sw.classification:
        metrics.append(("final_test_acc", "final test accuracy", False))
    fig, axes = new_figure(ncols=len(metrics), width=5.4, height=max(3.6, 0.42 * len(gs) + 1.9))
    rng = np.random.default_rng(0)
    cols, legend = _row_colours(keys, runs, gs)
    for ax, (metric, xlabel, logx) in zip(axes[0], metrics):
        for i, ((_vals, g), c) in enumerate(zip(gs, cols)):
            y = len(gs) - 1 - i
            ok = g[g["status"] == "done"][metric].dropna().to_numpy(float)
            if len(ok):
                ax.hlines(y, ok.min(), ok.max(), color=c, linewidth=1.2, alpha=0.7)
                seed_row(ax, y, ok, c, rng, of=len(g))
                if metric == "final_test_loss" and len(ok) > 1:
                    note_right(ax, y, f"sd {ok.std(ddof=1):.2g}", color="0.35")
            bad = {s: int((g["status"] == s).sum()) for s in (*BLOWN_UP, "failed")}
            note = ", ".join(f"{n} {s}" for s, n in bad.items() if n)
            if note and metric == metrics[-1][0]:
                note_right(ax, y, f"✕ {note}")
        labels = [group_label(keys, vals, runs) for vals, _ in gs]
        ax.set_yticks(range(len(gs) - 1, -1, -1), labels if ax is axes[0][0] else [""] * len(labels))
        ax.set_ylim(-0.7, len(gs) - 0.3)
        ax.grid(axis="y", visible=False)
        vals_all = runs.loc[runs["status"] == "done", metric].to_numpy(float)
        if logx and (vals_all[np.isfinite(vals_all)] > 0).any():
            log_x(ax)
        if metric.endswith("acc"):
            unit_interval(ax, "x")
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel("configuration" if keys else "")
    if legend:
        handles = [Line2D([], [], marker="o", linestyle="none", color=c) for c in legend.values()]
        # below the rows: right of the axes are the notes of the runs that blew up
        fig.legend(handles, list(legend), title=f"colour: {short(keys[0])}", loc="outside lower center",
                   ncols=min(len(legend), 6), frameon=False)  # fmt: skip
    if len(gs) <= MAX_COLOURED:  # pale tab20 colours would make text unreadable
        for tick, c in zip(axes[0][0].get_yticklabels(), cols):
            tick.set_color(c)
    shown = f"\nthe {len(gs)} best configurations; left out: {left_out}" if left_out else ""
    fig.suptitle(
        f"Spread over restarts: each dot one seed, bar = {AGGREGATE}, line = range\n"
        f"n=done/seeds where fewer finished; hollow dots: fewer than half finished{shown}\n{sw.describe()}"
    )
    return fig


if __name__ == "__main__":
    cli(plot_restarts)
