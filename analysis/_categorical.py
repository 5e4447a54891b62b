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


def compare(sw: Sweep, keys: list[str], title: str, extra: tuple | None = None):
    """Learning curves (left) and every seed's final metric with the mean ± SE (right) per group of `keys`;
    `extra` = (name, per-run values aligned with sw.runs, axis label) adds a third panel of the same dots."""
    runs = sw.runs
    gs = groups(runs, keys)
    cols = palette(keys, runs, len(gs))
    colour_of = {vals: c for (vals, _), c in zip(gs, cols)}
    metric, xlabel = (
        ("final_test_acc", "final test accuracy")
        if sw.classification
        else ("final_test_loss", f"final test loss ({sw.loss_unit})")
    )
    fig, axes = new_figure(ncols=3 if extra else 2, width=5.2 if extra else 5.8, height=max(3.8, 0.45 * len(gs) + 1.8))
    left, right = axes[0][0], axes[0][1]
    hist = sw.history
    if not hist.empty:
        draw_curves(left, hist, runs, keys, "train_loss", palette=colour_of, label_diverged=False)
        if (hist["train_loss"] > 0).any():
            log_y(left)
    left.set_xlabel("epoch (passes over the training set)")
    left.set_ylabel(f"train loss ({sw.loss_unit})")
    fit_title(left, f"train loss: {AGGREGATE} over finished seeds")
    rng = np.random.default_rng(0)
    labels = []
    for i, ((vals, g), c) in enumerate(zip(gs, cols)):
        y = len(gs) - 1 - i
        labels.append((y, group_label(keys, vals, runs), c))
        ok = g[g["status"] == "done"][metric].dropna().to_numpy(float)
        if len(ok):
            seed_row(right, y, ok, c, rng, of=len(g))
        bad = {s: int((g["status"] == s).sum()) for s in (*BLOWN_UP, "failed")}
        note = ", ".join(f"{n} {s}" for s, n in bad.items() if n)
        if note:
            note_right(right, y, f"✕ {note}", fontsize=9)
    right.set_yticks([y for y, _, _ in labels], [t for _, t, _ in labels])
    if len(gs) <= 10:  # pale tab20 colours would make text unreadable
        for tick, (_, _, c) in zip(right.get_yticklabels(), labels):
            tick.set_color(c)
    right.set_ylim(-0.7, len(gs) - 0.3)
    right.grid(axis="y", visible=False)
    if not sw.classification:
        vals = runs.loc[runs["status"] == "done", metric].to_numpy(float)
        if (vals[np.isfinite(vals)] > 0).any():
            log_x(right)
    else:
        unit_interval(right, "x")
    right.set_xlabel(xlabel)
    fit_title(right, f"each dot a seed, bar = {AGGREGATE} (n = finished of {sw.n_seeds} seeds)")
    if extra:
        _, values, label = extra
        ax = axes[0][2]
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
