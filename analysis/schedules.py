"""Learning-rate schedules: the rate each schedule actually applied (relative to the base lr, from the runs'
histories) and the train loss it gave. When other keys were swept too (optimizer, lr, batch size), each schedule
is shown at its best setting: the configuration with the best mean of the report's selection metric; curves
are the mean ± standard error over the seeds that finished.

    python -m analysis.schedules SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np

from analysis._common import (
    AGGREGATE,
    Skip,
    Sweep,
    cli,
    fit_title,
    group_label,
    groups,
    legend_outside,
    legend_title,
    log_y,
    mean_se_by,
    new_figure,
    palette,
    plot_function,
    se_band,
    short,
    value_label,
)
from sweep.report import SELECTION_METRIC, lower_is_better

SCHEDULE_KEYS = (
    "schedule.name",
    "schedule.gamma",
    "schedule.step_size",
    "schedule.decay",
    "schedule.min_lr",
    "schedule.warmup_steps",
    "schedule.pct_start",
)


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
    for (vals, g), c in zip(gs, palette(sched, runs, len(gs))):
        label = group_label(sched, vals, runs)
        best = g
        if others:
            sign = 1 if lower_is_better() else -1
            per = [
                (cfg, sub, sign * sub.loc[sub["status"] == "done", SELECTION_METRIC].mean())
                for cfg, sub in groups(g, others)
            ]
            cfg, best, _ = min(per, key=lambda p: (np.isnan(p[2]), p[2]))
            label += " (" + ", ".join(f"{short(k)}={value_label(k, v, runs)}" for k, v in zip(others, cfg)) + ")"
        h = hist[hist["run_id"].isin(best["run_id"])].copy()
        if h.empty:
            continue
        base = best.set_index("run_id")["lr"]
        h["lr_rel"] = h[lr_col] / h["run_id"].map(base)
        one = h[h["run_id"] == h["run_id"].iloc[0]]
        ax_lr.plot(one["epoch"], one["lr_rel"], color=c, label=label)
        done = h[h["run_id"].isin(best.loc[best["status"] == "done", "run_id"])]
        stats = mean_se_by(done if len(done) else h, "epoch", "train_loss")
        ax_loss.plot(stats.index, stats["mean"], color=c, label=label)
        se_band(ax_loss, stats.index, stats["mean"], stats["se"], c)
    ax_lr.set_ylabel("learning rate / base lr")
    ax_lr.set_ylim(bottom=0)
    fit_title(ax_lr, "the rate applied (sampled every logged step)")
    if (hist["train_loss"] > 0).any():
        log_y(ax_loss)
    ax_loss.set_ylabel(f"train loss ({sw.loss_unit})")
    fit_title(ax_loss, f"train loss: {AGGREGATE} over finished seeds")
    for ax in (ax_lr, ax_loss):
        ax.set_xlabel("epoch (passes over the training set)")
    legend_outside(ax_loss, legend_title(sched))
    best_note = " - each at its best setting of " + " × ".join(short(k) for k in others) if others else ""
    fig.suptitle(f"Learning-rate schedules{best_note}\n{sw.describe()}")
    return fig


if __name__ == "__main__":
    cli(plot_schedules)
