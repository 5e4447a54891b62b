"""Learning-rate schedules: the rate each schedule actually applied (relative to the base lr, from the runs'
histories) and the train loss it gave. When other keys were swept too (optimizer, lr, batch size), each schedule
is shown at its best setting: the configuration with the best mean of the report's selection metric (validation
loss) among those whose every seed finished; curves are the mean ± standard error over the seeds that finished.

    python -m sweep.analysis.schedules SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np

from sweep.analysis._common import (
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
from sweep.analysis._findings import best_row, config_stats, pm, selection_note, set_finding
from sweep.results import SELECTION_METRIC, lower_is_better

SCHEDULE_KEYS = (
    "schedule.name",
    "schedule.gamma",
    "schedule.step_size",
    "schedule.decay",
    "schedule.min_lr",
    "schedule.warmup_steps",
    "schedule.pct_start",
    "schedule.ticks_per_run",
)


@plot_function("schedules")
def plot_schedules(sw: Sweep):
    """Learning-rate schedules: lr(t) / base lr and the train loss per schedule (each at its best setting)."""
    sched = sw.need(*SCHEDULE_KEYS, any_of=True, what="schedule (or a schedule.* parameter)")
    hist = sw.history
    if hist.empty:
        raise Skip("no run has a history.parquet yet")
    lr_col = "lr_t"
    runs = sw.runs
    others = [k for k in sw.config_keys if k not in sched]
    fig, axes = new_figure(ncols=2, width=5.6, height=4.3)
    ax_lr, ax_loss = axes[0]
    gs = groups(runs, sched)
    for (vals, g), c in zip(gs, palette(sched, runs, len(gs))):
        label = group_label(sched, vals, runs)
        best = g
        if others:
            chosen = best_row(config_stats(g, others))  # on validation; a setting that blew up is not chosen
            if chosen is not None:
                cfg = tuple(chosen[k] for k in others)
                best = g[np.logical_and.reduce([g[k] == v for k, v in zip(others, cfg)])]
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
    set_finding(fig, _finding(sw, sched, others))
    return fig


def _finding(sw: Sweep, sched: list[str], others: list[str]) -> str:
    """Each schedule at its best setting of the other keys (chosen on validation): its validation and test
    loss, whether that best base rate is at the edge of the grid, and the ranking against the best schedule."""
    runs = sw.runs
    if SELECTION_METRIC not in runs:
        return ""
    rows = []
    for vals, g in groups(runs, sched):
        stats = config_stats(g, others) if others else config_stats(g, [])
        best = best_row(stats)
        if best is None:
            rows.append((group_label(sched, vals, runs), None, "", ""))
            continue
        pick = g if not others else g[np.logical_and.reduce([g[k] == best[k] for k in others])]
        test = config_stats(pick, [], "final_test_loss").iloc[0]
        where = ", ".join(f"{short(k)} {value_label(k, best[k], runs)}" for k in others)
        edge = ""
        if "lr" in others:
            lrs = sorted(g["lr"].dropna().unique())
            if len(lrs) > 2 and best["lr"] in (lrs[0], lrs[-1]):
                edge = " (at the edge of the lr grid: a wider grid might do better)"
        rows.append((group_label(sched, vals, runs), best, where, f"{pm(test['mean'], test['se'])}{edge}"))
    ranked = sorted([r for r in rows if r[1] is not None], key=lambda r: r[1]["mean"], reverse=not lower_is_better())
    if not ranked:
        return "No schedule finished a seed."
    parts = []
    for name, best, where, test in ranked:
        at = f" at {where}" if where else ""
        parts.append(f"{name}{at}: validation loss {pm(best['mean'], best['se'], best['n'])}, test {test}")
    top, nxt = ranked[0][1], ranked[1][1] if len(ranked) > 1 else None
    text = "Ranked by validation loss, each schedule at its best setting: " + "; ".join(parts) + "."
    if nxt is not None:
        gap, margin = abs(nxt["mean"] - top["mean"]), top["se"] + nxt["se"]
        verdict = "distinguishable from" if gap > margin else "not distinguishable (within their SEs) from"
        text += f" The best ({ranked[0][0]}) is {verdict} the next ({ranked[1][0]})."
    const = [r for r in ranked if r[0] == "constant"]
    if const and ranked[0][0] != "constant":
        c = const[0][1]
        text += f" Constant's best is {c['mean'] / top['mean']:.2g}× the best schedule's validation loss."
    missing = [r[0] for r in rows if r[1] is None]
    if missing:
        text += f" No finished seed: {', '.join(missing)}."
    return text + " " + selection_note()


if __name__ == "__main__":
    cli(plot_schedules)
