"""Batch size against final test loss and against wall-clock time, one line per combination of the other swept
keys (optimizer, lr, ...): mean ± std over seeds, log2 batch-size axis (`full` = full-batch gradient descent at
the right end).

    python -m analysis.batch_size SWEEP [-o out.png]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis._common import (Sweep, blown_up_note, cli, colors, group_label, groups, legend_title,
                              log_band_floor, log_y, new_figure, plot_function)


def batch_positions(values: pd.Series) -> dict[str, float]:
    """Batch size (as text) -> x position: the number itself; `full` at twice the largest number."""
    labels = {str(v) for v in values.dropna()}
    nums = sorted(int(v) for v in labels if v.isdigit())
    pos = {str(n): float(n) for n in nums}
    for v in labels - set(pos):
        pos[v] = float(2 * nums[-1]) if nums else 1.0
    return pos


@plot_function("batch_size")
def plot_batch_size(sw: Sweep):
    """Batch size vs final test loss and vs wall time (mean ± std over seeds)."""
    sw.need("batch_size")
    runs = sw.runs.copy()
    pos = batch_positions(runs["batch_size"])
    runs["_x"] = runs["batch_size"].astype(str).map(pos)
    hue = [k for k in sw.config_keys if k != "batch_size"]
    fig, axes = new_figure(ncols=2, width=5.6, height=4.3)
    panels = [(axes[0][0], "final_test_loss", f"final test loss ({sw.loss_unit})", True),
              (axes[0][1], "wall_s", "wall-clock time of the run (s)", False)]
    gs = groups(runs, hue)
    drawn_time: list[np.ndarray] = []
    for (vals, g), c in zip(gs, colors(len(gs))):
        note = blown_up_note(g)          # diverged/collapsed runs: counted in the label, never averaged
        label = group_label(hue, vals, runs) + (f" ({note})" if note else "")
        ok = g[g["status"] == "done"]
        for ax, metric, _, logy in panels:
            stats = ok.groupby("_x")[metric].agg(["mean", "std"]).sort_index()
            if stats.empty:
                continue
            std = stats["std"].fillna(0).to_numpy()
            mean = stats["mean"].to_numpy()
            if metric == "wall_s":
                # runs trained in one pack share one wall time: draw each distinct line once
                series = np.concatenate([stats.index.to_numpy(float), mean])
                if any(len(d) == len(series) and np.allclose(d, series) for d in drawn_time):
                    continue
                drawn_time.append(series)
            ax.plot(stats.index, mean, "o-", color=c, label=label, markersize=5)
            lo = mean - std
            if logy:
                lo = np.maximum(lo, log_band_floor(mean))
            ax.fill_between(stats.index, lo, mean + std, color=c, alpha=0.18, linewidth=0)
    ticks = sorted((x, v) for v, x in pos.items())
    for ax, metric, ylabel, logy in panels:
        ax.set_xscale("log", base=2)
        ax.set_xticks([x for x, _ in ticks], [t for _, t in ticks])
        ax.minorticks_off()
        if logy and (runs[metric] > 0).any():
            log_y(ax)
        elif metric == "wall_s":
            ax.set_ylim(bottom=0)
        ax.set_xlabel("batch size (examples per step, log2 scale)")
        ax.set_ylabel(ylabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        axes[0][1].legend(handles, labels, title=legend_title(hue) if hue else None, loc="upper left",
                          bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
    note = ""
    if "pack_size" in runs and runs["pack_size"].fillna(1).max() > 1:
        note = "; a pack's runs share its time (one line each)"
    axes[0][1].set_title(f"same epochs for every batch size{note}", loc="left", fontsize=9)
    fig.suptitle(f"Batch size: final test loss and training time (mean ± 1 std over seeds)\n{sw.describe()}")
    return fig


if __name__ == "__main__":
    cli(plot_batch_size)
