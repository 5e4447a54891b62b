"""Batch size against final test loss and against wall-clock time, one line per combination of the other swept
keys (optimizer, lr, ...): mean ± standard error over the seeds that finished, log2 batch-size axis (`full` =
full-batch gradient descent: at the training-set size where known, else at the right end).

    python -m analysis.batch_size SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis._common import (
    AGGREGATE,
    Sweep,
    blown_up_note,
    cli,
    group_label,
    groups,
    legend_title,
    log_band_floor,
    log_y,
    mean_se_by,
    new_figure,
    no_minor_x,
    palette,
    plot_function,
    se_band,
    value_label,
)


def batch_positions(runs: pd.DataFrame) -> pd.Series:
    """Each run's x position: its batch size (numeric, from `load_runs`); a full batch of unknown size (NaN)
    at twice the largest known size, so it sits at the right end."""
    x = pd.to_numeric(runs["batch_size"], errors="coerce").astype(float)
    known = x.dropna()
    return x.fillna(2 * known.max() if len(known) else 1.0)


@plot_function("batch_size")
def plot_batch_size(sw: Sweep):
    """Batch size vs final test loss and vs wall time (mean ± SE over seeds)."""
    sw.need("batch_size")
    runs = sw.runs.copy()
    runs["_x"] = batch_positions(runs)
    pos = {x: value_label("batch_size", v, runs) for x, v in zip(runs["_x"], runs["batch_size"])}
    hue = [k for k in sw.config_keys if k != "batch_size"]
    fig, axes = new_figure(ncols=2, width=5.6, height=4.3)
    panels = [
        (axes[0][0], "final_test_loss", f"final test loss ({sw.loss_unit})", True),
        (axes[0][1], "wall_s", "wall-clock time of the run (s)", False),
    ]
    gs = groups(runs, hue)
    drawn_time: list[np.ndarray] = []
    for (vals, g), c in zip(gs, palette(hue, runs, len(gs))):
        note = blown_up_note(g)  # diverged/collapsed runs: counted in the label, never averaged
        label = group_label(hue, vals, runs) + (f" ({note})" if note else "")
        ok = g[g["status"] == "done"]
        for ax, metric, _, logy in panels:
            stats = mean_se_by(ok, "_x", metric)
            if stats.empty:
                continue
            mean = stats["mean"].to_numpy()
            if metric == "wall_s":
                # runs trained in one pack share one wall time: draw each distinct line once
                series = np.concatenate([stats.index.to_numpy(float), mean])
                if any(len(d) == len(series) and np.allclose(d, series) for d in drawn_time):
                    continue
                drawn_time.append(series)
            ax.plot(stats.index, mean, "o-", color=c, label=label, markersize=5)
            se_band(ax, stats.index, mean, stats["se"], c, floor=log_band_floor(mean) if logy else None)
    ticks = sorted(pos.items())
    for ax, metric, ylabel, logy in panels:
        ax.set_xscale("log", base=2)
        ax.set_xticks([x for x, _ in ticks], [t for _, t in ticks])
        no_minor_x(ax)
        if logy and (runs[metric] > 0).any():
            log_y(ax)
        elif metric == "wall_s":
            ax.set_ylim(bottom=0)
        ax.set_xlabel("batch size (examples per step, log2 scale)")
        ax.set_ylabel(ylabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        axes[0][1].legend(
            handles,
            labels,
            title=legend_title(hue) if hue else None,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
            frameon=False,
        )
    note = ""
    if "pack_size" in runs and runs["pack_size"].fillna(1).max() > 1:
        note = "; a pack's runs share its time (one line each)"
    axes[0][1].set_title(f"same epochs for every batch size{note}", loc="left", fontsize=9)
    fig.suptitle(f"Batch size: final test loss and training time ({AGGREGATE} over finished seeds)\n{sw.describe()}")
    return fig


if __name__ == "__main__":
    cli(plot_batch_size)
