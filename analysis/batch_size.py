"""Batch size: the lecture's trade-off. Small batches make many cheap, noisy updates per pass over the data; large
ones few, costly, accurate ones. Left: the final validation loss against the batch size, one line per learning
rate (mean ± standard error over the seeds that finished; each batch size's rate chosen on validation is ringed);
middle and right: the train loss of each batch size at its chosen rate (averaged in log-spaced bins, 4 per
doubling) against the updates made (optimizer steps) and against the examples processed (steps × batch size):
the algorithm's costs, not the wall time of a
machine (which depends on how runs were packed). Log2 batch-size axis; `full` = full-batch gradient descent, at
the training-set size where known, else at the right end.

    python -m sweep.analysis.batch_size SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweep.analysis._common import (
    AGGREGATE,
    Sweep,
    blown_up_note,
    cli,
    fit_title,
    group_label,
    groups,
    legend_outside,
    legend_title,
    log_band_floor,
    log_x,
    log_y,
    mean_se_by,
    new_figure,
    no_minor_x,
    palette,
    plot_function,
    se_band,
    sequential_colors,
    short,
    value_label,
)
from sweep.analysis._findings import best_row, config_stats, pm, selection_note, set_finding
from sweep.results import SELECTION_METRIC


def batch_positions(runs: pd.DataFrame) -> pd.Series:
    """Each run's x position: its batch size (numeric, from `load_runs`); a full batch of unknown size (NaN)
    at twice the largest known size, so it sits at the right end."""
    x = pd.to_numeric(runs["batch_size"], errors="coerce").astype(float)
    known = x.dropna()
    return x.fillna(2 * known.max() if len(known) else 1.0)


def _metric(runs: pd.DataFrame) -> tuple[str, str]:
    if SELECTION_METRIC in runs and runs[SELECTION_METRIC].notna().any():
        return SELECTION_METRIC, "final validation loss"
    return "final_test_loss", "final test loss"


@plot_function("batch_size")
def plot_batch_size(sw: Sweep):
    """Batch size: final validation loss per lr, and train loss vs updates and vs examples processed."""
    sw.need("batch_size")
    runs = sw.runs.copy()
    runs["_x"] = batch_positions(runs)
    pos = {x: value_label("batch_size", v, runs) for x, v in zip(runs["_x"], runs["batch_size"])}
    hue = [k for k in sw.config_keys if k != "batch_size"]
    metric, metric_name = _metric(runs)
    fig, axes = new_figure(ncols=3, width=4.9, height=4.3)
    ax_b, ax_u, ax_e = axes[0]
    gs = groups(runs, hue)
    for (vals, g), c in zip(gs, palette(hue, runs, len(gs))):
        note = blown_up_note(g)  # diverged/collapsed runs: counted in the label, never averaged
        label = group_label(hue, vals, runs) + (f" ({note})" if note else "")
        stats = mean_se_by(g[g["status"] == "done"], "_x", metric)
        if stats.empty:
            continue
        mean = stats["mean"].to_numpy()
        ax_b.plot(stats.index, mean, "o-", color=c, label=label, markersize=5)
        se_band(ax_b, stats.index, mean, stats["se"], c, floor=log_band_floor(mean))
    # each batch size at its rate chosen on validation (over the other swept keys)
    others = [k for k in sw.config_keys if k != "batch_size"]
    chosen = []
    for bvals, g in groups(runs, ["batch_size"]):
        best = best_row(config_stats(g, others, metric)) if others else best_row(config_stats(g, [], metric))
        if best is None:
            continue
        pick = g
        for k in others:
            pick = pick[pick[k] == best[k]]
        chosen.append((bvals[0], float(g["_x"].iloc[0]), best, pick))
    for _, x, best, _ in chosen:
        if np.isfinite(best["mean"]):
            ax_b.scatter([x], [best["mean"]], s=170, facecolors="none", edgecolors="0.15", linewidths=1.6, zorder=5)
    ticks = sorted(pos.items())
    ax_b.set_xscale("log", base=2)
    ax_b.set_xticks([x for x, _ in ticks], [t for _, t in ticks])
    no_minor_x(ax_b)
    if (runs[metric] > 0).any():
        log_y(ax_b)
    ax_b.set_xlabel("batch size (log2 scale)")
    ax_b.set_ylabel(f"{metric_name} ({sw.loss_unit})")
    fit_title(ax_b, "one line per lr; ringed: each batch size's lr chosen on validation", width_in=4.4)
    legend_outside(ax_b, legend_title(hue) if hue else None)
    curves = _cost_curves(sw, chosen, runs)
    cols = sequential_colors(len(chosen))
    for (bval, _, best, _), c in zip(chosen, cols):
        stats = curves.get(bval)
        if stats is None:
            continue
        lr = ", ".join(f"{short(k)}={value_label(k, best[k], runs)}" for k in others)
        name = f"B={value_label('batch_size', bval, runs)}" + (f" ({lr})" if lr else "")
        for ax, x in ((ax_u, "updates"), (ax_e, "examples")):
            s = stats[x]
            ax.plot(s.index, s["mean"], color=c, label=name, marker="o" if len(s) < 20 else None, markersize=4)
            se_band(ax, s.index, s["mean"], s["se"], c)
    for ax, what in ((ax_u, "updates (optimizer steps)"), (ax_e, "examples processed (steps × batch size)")):
        log_x(ax)
        if ax.has_data():
            log_y(ax)
        ax.set_xlabel(f"{what}, log scale")
        ax.set_ylabel(f"train loss ({sw.loss_unit})")
    fit_title(ax_u, "each batch size at its chosen lr: loss per update", width_in=4.4)
    fit_title(ax_e, "the same runs: loss per example processed", width_in=4.4)
    legend_outside(ax_e, "batch size")
    fig.suptitle(
        f"Batch size: updates are cheap but noisy for small batches, costly but accurate for large ones "
        f"({AGGREGATE} over finished seeds)\n{sw.describe()}"
    )
    set_finding(fig, _finding(chosen, curves, runs, others, metric_name))
    return fig


def _cost_curves(sw: Sweep, chosen: list, runs: pd.DataFrame) -> dict:
    """Per batch size: mean ± SE of the train loss over the finished seeds of its chosen config, against
    updates and against examples processed."""
    try:
        hist = sw.history
    except Exception:  # a hand-made frame without run folders: the cost panels stay empty
        return {}
    if hist.empty or "train_loss" not in hist:
        return {}
    out = {}
    for bval, _x, _, pick in chosen:
        done = pick[pick["status"] == "done"]
        h = hist[hist["run_id"].isin(done["run_id"])].dropna(subset=["train_loss"]).copy()
        if h.empty:
            continue
        batch = h["run_id"].map(done.set_index("run_id")["_x"])
        n = h["run_id"].map(done.set_index("run_id").get("n_train", pd.Series(dtype=float)))
        batch = np.minimum(batch, n.fillna(batch))
        h["updates"] = h["step"].astype(float)
        h["examples"] = h["step"].astype(float) * batch
        out[bval] = {k: _binned(h, k) for k in ("updates", "examples")}
    return out


BINS_PER_OCTAVE = 4


def _binned(h: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean ± SE over runs of the train loss in log-spaced bins of `x` (BINS_PER_OCTAVE per doubling; each run
    first averaged within a bin, so a run logged every step weighs as much as one logged rarely), at the bin's
    geometric centre: a small batch's per-step losses are noisy, and the bins show the trend."""
    h = h[h[x] > 0]
    k = np.floor(np.log2(h[x].to_numpy(float)) * BINS_PER_OCTAVE)
    per_run = h.assign(_bin=2 ** ((k + 0.5) / BINS_PER_OCTAVE)).groupby(["run_id", "_bin"])["train_loss"].mean()
    stats = mean_se_by(per_run.reset_index(), "_bin", "train_loss")
    stats.index.name = x
    return stats


def _finding(chosen: list, curves: dict, runs: pd.DataFrame, others: list, metric_name: str) -> str:
    if not chosen:
        return ""
    parts = []
    for bval, _, best, _pick in chosen:
        where = ", ".join(f"{short(k)} {value_label(k, best[k], runs)}" for k in others)
        parts.append(
            f"B={value_label('batch_size', bval, runs)}" + (f" at {where}" if where else "") + f": {metric_name} "
            f"{pm(best['mean'], best['se'], best['n'])}"
        )
    text = "Each batch size at its rate chosen on validation: " + "; ".join(parts) + "."
    edge = []
    if "lr" in others:
        for bval, _, best, _ in chosen:
            g = runs[runs["batch_size"] == bval] if pd.notna(bval) else runs[runs["batch_size"].isna()]
            lrs = sorted(g["lr"].dropna().unique())
            if len(lrs) > 2 and best["lr"] in (lrs[0], lrs[-1]):
                edge.append(value_label("batch_size", bval, runs))
        text += (
            f" The chosen rate is at the edge of the lr grid for B={', '.join(edge)}: a wider grid might do better."
            if edge
            else " Every batch size's chosen rate is inside the lr grid."
        )
    ends = [float(c["updates"].index[-1]) for c in curves.values() if len(c["updates"])]
    if len(ends) > 1:
        # the same number of updates for every batch size: as many as the shortest run made
        u = min(ends)
        at, losses = [], []
        for bval, c in curves.items():
            s = c["updates"]
            s = s[s.index <= u]
            if len(s):
                losses.append(float(s["mean"].iloc[-1]))
                at.append(f"B={value_label('batch_size', bval, runs)} {losses[-1]:.3g}")
        per_update = (
            "per update, the larger batches did at least as well"
            if all(b <= a for a, b in zip(losses, losses[1:]))
            else "per update, the larger batches did not always do better"
        )
        text += (
            f" After about the same {u:,.0f} updates (the shortest run's; the log-spaced bin that holds it), train "
            "loss: " + "; ".join(at) + f"; {per_update}, but each update costs B examples. After the same examples "
            "(every run makes the same passes over the data), the validation losses above."
        )
    return text + " " + selection_note()


if __name__ == "__main__":
    cli(plot_batch_size)
