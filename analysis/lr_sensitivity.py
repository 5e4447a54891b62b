"""Final validation loss (what the best rate is chosen on, ringed), test loss (and accuracy) against the learning
rate, one line per optimizer (or per combination of the other swept keys): the mean ± standard error over the
seeds that finished, on a log lr axis (a tick per rate of a grid; a continuous axis for many rates, e.g. random
search); runs that diverged or collapsed are marked ✕ at the top (counted, never averaged).

    python -m sweep.analysis.lr_sensitivity SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from sweep.analysis._common import (
    AGGREGATE,
    BLOWN_UP,
    Coincident,
    Sweep,
    blown_up_label,
    cli,
    fmt,
    group_label,
    groups,
    legend_outside,
    legend_title,
    log_band_floor,
    log_x,
    log_y,
    mean_se,
    new_figure,
    no_minor_x,
    palette,
    plot_function,
    se_band,
    unit_interval,
)
from sweep.analysis._findings import (
    best_row,
    blown_text,
    config_stats,
    pm,
    selection_note,
    set_finding,
    span,
    within_factor,
)
from sweep.results import SELECTION_METRIC

MARK_ROW = 0.055  # axes fraction per row of divergence marks
MAX_LR_TICKS = 8  # more distinct rates than this (random search) get a continuous log axis, not a tick each


def _make_room(ax, frac: float, top: bool, logy: bool) -> None:
    """Widen the y range so that the outer `frac` of the axes (top or bottom) holds no data, only the marks."""
    lo, hi = ax.get_ylim()
    f = (lambda v: np.log10(v), lambda v: 10**v) if logy else (lambda v: v, lambda v: v)
    a, b = f[0](lo), f[0](hi)
    span = (b - a) / (1 - frac)
    ax.set_ylim(*(f[1](a), f[1](a + span)) if top else (f[1](b - span), f[1](b)))


def lr_axis(ax, lrs: list[float]) -> None:
    """The log learning-rate axis: a labelled tick at each rate of a grid (a few values), else (random search,
    many distinct rates) a continuous log axis with its usual decade ticks, never a crowd of labels."""
    if len(lrs) <= MAX_LR_TICKS:
        ax.set_xticks(lrs, [fmt(float(v)) for v in lrs], minor=False)
        no_minor_x(ax)
    else:
        log_x(ax)


@plot_function("lr_sensitivity")
def plot_lr_sensitivity(sw: Sweep):
    """Final validation and test loss vs learning rate per optimizer (mean ± SE over seeds, diverged runs marked)."""
    sw.need("lr")
    runs = sw.runs
    hue = [k for k in sw.config_keys if k != "lr"]
    metrics = [("final_test_loss", f"final test loss ({sw.loss_unit})", True)]
    if SELECTION_METRIC in runs and runs[SELECTION_METRIC].notna().any():  # what the best rate is chosen on
        metrics.insert(0, (SELECTION_METRIC, f"final validation loss ({sw.loss_unit})", True))
    if sw.classification:
        metrics.append(("final_test_acc", "final test accuracy", False))
    fig, axes = new_figure(ncols=len(metrics), width=5.0 if len(metrics) > 2 else 5.6, height=4.3)
    gs = groups(runs, hue)
    cols = palette(hue, runs, len(gs))
    diverging = [vals for vals, g in gs if g["status"].isin(BLOWN_UP).any()]
    chosen_lr, finding = _choose(sw, hue, gs)
    for ax, (metric, ylabel, logy) in zip(axes[0], metrics):
        done = runs.loc[runs["status"] == "done", metric].to_numpy(float)
        logy = logy and bool((done[np.isfinite(done)] > 0).any())
        top = metric.endswith("loss")  # ✕ where a loss blew up: above a loss curve, below an accuracy curve
        drawn = Coincident()  # a student's correct Adam lies exactly on torch's: both must show
        for (vals, g), c in zip(gs, cols):
            xs, mean, se, div, ns = [], [], [], [], []
            for lr, at in g.groupby("lr", sort=True):
                bad = int(at["status"].isin(BLOWN_UP).sum())
                if bad:
                    div.append((lr, bad, len(at)))
                m, e, k = mean_se(at.loc[at["status"] == "done", metric])
                xs.append(lr)
                mean.append(m)
                se.append(e)
                ns.append((k, len(at)))
            xs, mean, se = np.array(xs, float), np.array(mean), np.array(se)
            name = group_label(hue, vals, runs)
            label, style = drawn.style(xs, mean, name)
            # on a curve drawn before: narrower, with smaller markers, on top of it
            style = {"markersize": 3 if style else 5, **style}
            (line,) = ax.plot(xs, mean, "o-", color=c, label=label, **style)
            drawn.add(xs, mean, name, line)
            _few_seeds(ax, xs, mean, ns, c)
            chosen = chosen_lr.get(vals)
            if chosen is not None and metric in (SELECTION_METRIC, "final_test_loss"):
                # the rate chosen on validation, ringed on the validation and the test panel alike
                at = np.flatnonzero(xs == chosen)
                if len(at) and np.isfinite(mean[at[0]]):
                    ax.plot(xs[at], mean[at], "o", markersize=12, markerfacecolor="none", color=c, markeredgewidth=1.8)
            se_band(ax, xs, mean, se, c, floor=log_band_floor(mean) if logy else None)
            if div:
                row = diverging.index(vals)  # one row of ✕ per line: marks at one lr never overlap
                y = 1 - (row + 0.7) * MARK_ROW if top else (row + 0.7) * MARK_ROW
                ax.scatter(
                    [d[0] for d in div],
                    [y] * len(div),
                    marker="x",
                    s=55,
                    color=c,
                    linewidths=2.2,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    zorder=5,
                )
                for x, n, of in div:
                    if of > 1:
                        ax.annotate(
                            f"{n}/{of}",
                            (x, y),
                            xycoords=ax.get_xaxis_transform(),
                            xytext=(6, -3),
                            textcoords="offset points",
                            fontsize=8,
                            color=c,
                        )
        ax.set_xscale("log")
        if logy:
            log_y(ax)
        if diverging:
            _make_room(ax, (len(diverging) + 0.6) * MARK_ROW, top, logy)
        if metric.endswith("acc"):
            unit_interval(ax)
        ax.set_xlabel("learning rate η (log scale)")
        ax.set_ylabel(ylabel)
    any_diverged = bool(diverging)
    lrs = sorted(runs["lr"].dropna().unique())
    for ax in axes[0]:
        lr_axis(ax, lrs)
    ax = axes[0][-1]
    legend_outside(ax, legend_title(hue))
    if any_diverged:
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], marker="x", color="0.3", linestyle="none", markersize=8, markeredgewidth=2))
        labels.append(f"{blown_up_label(runs)} (n/seeds)")
        ax.legend(
            handles,
            labels,
            title=legend_title(hue),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
            frameon=False,
        )
    if chosen_lr:
        axes[0][0].set_title("ringed: the rate chosen on validation", loc="left", fontsize=9)
    fig.suptitle(f"Final metrics vs learning rate ({AGGREGATE} over finished seeds)\n{sw.describe()}")
    set_finding(fig, finding)
    return fig


def _few_seeds(ax, xs, mean, ns: list[tuple[int, int]], color) -> None:
    """Mark the means of fewer seeds than were run: `n=1/3` beside them, and hollow where fewer than half
    finished (a lucky survivor is not a robust rate)."""
    for x, y, (n, of) in zip(xs, mean, ns):
        if not (0 < n < of and np.isfinite(y)):
            continue
        if 2 * n < of:
            ax.plot([x], [y], "o", color=color, markerfacecolor="white", markersize=5, zorder=4)
        ax.annotate(f"n={n}/{of}", (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8, color=color)


def _choose(sw: Sweep, hue: list[str], gs: list) -> tuple[dict, str]:
    """Per line: the learning rate chosen on validation, and the finding in words (the best rate, its
    validation and test loss, the rates within 2x of the best validation loss, where runs blew up)."""
    runs = sw.runs
    if SELECTION_METRIC not in runs:
        return {}, ""
    chosen, parts = {}, []
    for vals, g in gs:
        stats = config_stats(g, ["lr"])
        best = best_row(stats)
        name = group_label(hue, vals, runs) if hue else "all runs"
        if best is None:
            parts.append(f"**{name}**: no rate finished a seed.")
            continue
        chosen[vals] = float(best["lr"])
        test = config_stats(g[g["lr"] == best["lr"]], ["lr"], "final_test_loss").iloc[0]
        lo, hi = within_factor(stats, "lr", best, 2.0)
        text = (
            f"**{name}**: best lr {best['lr']:g} (validation loss {pm(best['mean'], best['se'], best['n'])}; "
            f"test loss there {pm(test['mean'], test['se'])}); within 2× of that over lr {span(lo, hi)}"
        )
        bad = blown_text(stats, "lr", runs)
        parts.append(text + (f"; {bad}" if bad else "") + ".")
    return chosen, " ".join(parts) + " " + selection_note()


if __name__ == "__main__":
    cli(plot_lr_sensitivity)
