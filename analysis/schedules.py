"""Learning-rate schedules: the rate each schedule actually applied (relative to the base lr, from the runs'
histories) and the train loss it gave. When other keys were swept too (optimizer, lr, batch size), each schedule
is shown at its best setting: the configuration with the lowest mean final test loss.

    python -m analysis.schedules SWEEP [-o out.png]
"""
from __future__ import annotations

import numpy as np

from analysis._common import (Skip, Sweep, cli, colors, fmt, group_label, groups, legend_outside, legend_title,
                              log_y, new_figure, plot_function, short)
from analysis.learning_curves import seed_band

SCHEDULE_KEYS = ("schedule.name", "schedule.gamma", "schedule.step_size", "schedule.decay", "schedule.min_lr",
                 "schedule.warmup_steps", "schedule.pct_start")


@plot_function("schedules")
def plot_schedules(sw: Sweep):
    """Learning-rate schedules: lr(t) / base lr and the train loss per schedule (each at its best setting)."""
    sched = sw.need(*SCHEDULE_KEYS, any_of=True, what="schedule (or a schedule.* parameter)")
    hist = sw.history
    if hist.empty:
        raise Skip("no run has a history.parquet yet")
    lr_col = "lr_t" if "lr_t" in hist else "lr"
    runs = sw.runs
    others = [k for k in sw.config_keys if k not in sched]
    fig, axes = new_figure(ncols=2, width=5.6, height=4.3)
    ax_lr, ax_loss = axes[0]
    gs = groups(runs, sched)
    for (vals, g), c in zip(gs, colors(len(gs))):
        label = group_label(sched, vals, runs)
        best = g
        if others:
            per = [(cfg, sub, sub.loc[sub["status"] == "done", "final_test_loss"].mean())
                   for cfg, sub in groups(g, others)]
            per = [p for p in per if not np.isnan(p[2])] or per
            cfg, best, _ = min(per, key=lambda p: (np.isnan(p[2]), p[2]))
            label += " (" + ", ".join(f"{short(k)}={fmt(v)}" for k, v in zip(others, cfg)) + ")"
        h = hist[hist["run_id"].isin(best["run_id"])].copy()
        if h.empty:
            continue
        base = best.set_index("run_id")["lr"]
        h["lr_rel"] = h[lr_col] / h["run_id"].map(base)
        one = h[h["run_id"] == h["run_id"].iloc[0]]
        ax_lr.plot(one["epoch"], one["lr_rel"], color=c, label=label)
        band = seed_band(h, "epoch", "train_loss")
        ax_loss.plot(band.index, band["median"], color=c, label=label)
        if len(best) > 1:
            ax_loss.fill_between(band.index, band["min"], band["max"], color=c, alpha=0.18, linewidth=0)
    ax_lr.set_ylabel("learning rate / base lr")
    ax_lr.set_ylim(bottom=0)
    ax_lr.set_title("the rate applied (sampled every logged step)", loc="left")
    if (hist["train_loss"] > 0).any():
        log_y(ax_loss)
    ax_loss.set_ylabel(f"train loss ({sw.loss_unit})")
    ax_loss.set_title("train loss: median over seeds, band = min-max", loc="left")
    for ax in (ax_lr, ax_loss):
        ax.set_xlabel("epoch (passes over the training set)")
    legend_outside(ax_loss, legend_title(sched))
    best_note = " - each at its best setting of " + " × ".join(short(k) for k in others) if others else ""
    fig.suptitle(f"Learning-rate schedules{best_note}\n{sw.describe()}")
    return fig


if __name__ == "__main__":
    cli(plot_schedules)
