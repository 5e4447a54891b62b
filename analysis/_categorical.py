"""A comparison of a few categories (initialisations, sampling modes): learning curves on the left, every seed's
final metric on the right (dots, with the mean ± standard error as a bar), diverged, collapsed and failed runs
counted."""

from __future__ import annotations

import numpy as np

from sweep.analysis._common import (
    AGGREGATE,
    BLOWN_UP,
    Sweep,
    fit_title,
    group_label,
    groups,
    log_x,
    log_y,
    mean_se,
    new_figure,
    note_right,
    palette,
    seed_row,
    unit_interval,
)
from sweep.analysis.learning_curves import draw_curves
from sweep.results import SELECTION_METRIC


def test_metric(sw: Sweep) -> tuple[str, str]:
    """The final test metric a comparison reports: (column, axis label), accuracy for a classifier."""
    if sw.classification:
        return "final_test_acc", "final test accuracy"
    return "final_test_loss", f"final test loss ({sw.loss_unit})"


def ranked_panels(sw: Sweep) -> dict:
    """compare()'s panels for a sweep with a validation split: the validation loss per epoch and each seed's final
    validation loss (what the Finding ranks on), then the test metric beside it, reported only. {} without one
    (compare's default panels: train loss and the test metric)."""
    runs, hist = sw.runs, sw.history
    has_val = SELECTION_METRIC in runs and runs[SELECTION_METRIC].notna().any()
    if not (has_val and not hist.empty and "val_loss" in hist and hist["val_loss"].notna().any()):
        return {}
    dots = f"each dot a seed, bar = {AGGREGATE} (n = finished of {sw.n_seeds} seeds)"
    test, test_label = test_metric(sw)
    return {
        "curve": ("val_loss", "validation loss"),
        "finals": [
            (SELECTION_METRIC, f"final validation loss ({sw.loss_unit})", f"ranked on: {dots}"),
            (test, test_label, "reported only, never ranked on"),
        ],
    }


def compare(
    sw: Sweep,
    keys: list[str],
    title: str,
    extra: tuple | None = None,
    *,
    curve: tuple[str, str] = ("train_loss", "train loss"),
    finals: list[tuple[str, str, str]] | None = None,
):
    """Learning curves of `curve` = (history column, name) (left), then per (column, axis label, title) of
    `finals` (default: the final test metric) every seed's final value with the mean ± SE, per group of `keys`;
    `extra` = (name, per-run values aligned with sw.runs, axis label) adds a last panel of the same dots."""
    runs = sw.runs
    gs = groups(runs, keys)
    cols = palette(keys, runs, len(gs))
    colour_of = {vals: c for (vals, _), c in zip(gs, cols)}
    if finals is None:
        finals = [(*test_metric(sw), f"each dot a seed, bar = {AGGREGATE} (n = finished of {sw.n_seeds} seeds)")]
    ncols = 1 + len(finals) + bool(extra)
    fig, axes = new_figure(ncols=ncols, width=5.2 if ncols > 2 else 5.8, height=max(3.8, 0.45 * len(gs) + 1.8))
    left = axes[0][0]
    column, name = curve
    hist = sw.history
    if not hist.empty and column in hist:
        draw_curves(left, hist, runs, keys, column, palette=colour_of, label_diverged=False)
        if (hist[column] > 0).any():
            log_y(left)
    left.set_xlabel("epoch (passes over the training set)")
    left.set_ylabel(f"{name} ({sw.loss_unit})")
    fit_title(left, f"{name}: {AGGREGATE} over finished seeds")
    rng = np.random.default_rng(0)
    labels = []
    for i, (vals, _g) in enumerate(gs):
        labels.append((len(gs) - 1 - i, group_label(keys, vals, runs), cols[i]))
    for j, (metric, xlabel, panel_title) in enumerate(finals):
        _dots(axes[0][1 + j], sw, gs, cols, labels, metric, xlabel, panel_title, rng, first=j == 0)
    if extra:
        _, values, label = extra
        ax = axes[0][-1]
        runs_v = runs.assign(_v=np.asarray(values, dtype=float))
        for i, ((_vals, grp), c) in enumerate(zip(gs, cols)):
            g = runs_v.loc[grp.index]
            y = len(gs) - 1 - i
            ok = g.loc[g["status"] == "done", "_v"].dropna().to_numpy(float)
            if len(ok):
                ax.scatter(ok, y + rng.uniform(-0.12, 0.12, len(ok)), color=c, s=28, alpha=0.85, zorder=3)
                m, se, _ = mean_se(ok)
                ax.plot([m] * 2, [y - 0.3, y + 0.3], color=c, linewidth=2.5, zorder=4)
        ax.set_yticks([y for y, _, _ in labels], [""] * len(labels))
        ax.set_ylim(-0.7, len(gs) - 0.3)
        ax.set_xlim(left=-0.05)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(label)
        fit_title(ax, "at the end of training, the most symmetric hidden layer")
    fig.suptitle(f"{title}\n{sw.describe()}")
    return fig


def _dots(ax, sw: Sweep, gs, cols, labels, metric, xlabel, panel_title, rng, first: bool) -> None:
    """Every seed's final `metric` per group as dots with the mean ± SE bar; runs that did not finish counted.
    Only the `first` such panel names the groups on its y axis."""
    runs = sw.runs
    right = ax
    for i, ((_vals, g), c) in enumerate(zip(gs, cols)):
        y = len(gs) - 1 - i
        ok = g[g["status"] == "done"][metric].dropna().to_numpy(float) if metric in g else np.array([])
        if len(ok):
            seed_row(right, y, ok, c, rng, of=len(g))
        bad = {s: int((g["status"] == s).sum()) for s in (*BLOWN_UP, "failed")}
        note = ", ".join(f"{n} {s}" for s, n in bad.items() if n)
        if note:
            note_right(right, y, f"✕ {note}", fontsize=9)
    right.set_yticks([y for y, _, _ in labels], [t if first else "" for _, t, _ in labels])
    if first and len(gs) <= 10:  # pale tab20 colours would make text unreadable
        for tick, (_, _, c) in zip(right.get_yticklabels(), labels):
            tick.set_color(c)
    right.set_ylim(-0.7, len(gs) - 0.3)
    right.grid(axis="y", visible=False)
    if not metric.endswith("acc"):
        vals = runs.loc[runs["status"] == "done", metric].to_numpy(float) if metric in runs else np.array([])
        if (vals[np.isfinite(vals)] > 0).any():
            log_x(right)
    else:
        unit_interval(right, "x")
    right.set_xlabel(xlabel)
    fit_title(right, panel_title)
