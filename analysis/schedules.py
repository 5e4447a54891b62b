"""Learning-rate schedules: the rate each schedule actually applied (absolute, from the runs' histories: base rates
differ per schedule) and the validation loss it gave, per epoch. When other keys were swept too (lr, optimizer,
batch size), each schedule is shown at its best setting: the configuration with the best mean of the report's
selection metric (final validation loss) among those whose every seed finished; curves are the mean ± standard
error over the seeds that finished. The finding ranks the schedules so chosen and says whether a decaying schedule
beats the best constant rate by more than their standard errors (on validation, what they were chosen on; and on
test), or that it does not.

    python -m sweep.analysis.schedules SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    runs = sw.runs
    others = [k for k in sw.config_keys if k not in sched]
    fig, axes = new_figure(ncols=2, width=5.6, height=4.3)
    ax_lr, ax_val = axes[0]
    chosen = best_of_each(runs, sched, others)
    for (label, _, best, pick, _), c in zip(chosen, palette(sched, runs, len(chosen))):
        if best is not None and others:
            label += " (" + ", ".join(f"{short(k)}={value_label(k, best[k], runs)}" for k in others) + ")"
        h = hist[hist["run_id"].isin(pick["run_id"])]
        if h.empty:
            continue
        one = h[(h["run_id"] == h["run_id"].iloc[0]) & h["train_loss"].notna()]
        ax_lr.plot(one["epoch"], one["lr_t"], color=c, label=label)
        done = h[h["run_id"].isin(pick.loc[pick["status"] == "done", "run_id"])]
        if "val_loss" in h:
            stats = mean_se_by(done if len(done) else h, "epoch", "val_loss")
            ax_val.plot(stats.index, stats["mean"], color=c, marker=".", label=label)
            se_band(ax_val, stats.index, stats["mean"], stats["se"], c)
    ax_lr.set_ylabel("learning rate (absolute)")
    ax_lr.set_ylim(bottom=0)
    fit_title(ax_lr, "the rate applied, at each schedule's chosen base rate")
    if "val_loss" in hist and (hist["val_loss"] > 0).any():
        log_y(ax_val)
    ax_val.set_ylabel(f"validation loss ({sw.loss_unit})")
    fit_title(ax_val, f"validation loss (what the choice is made on): {AGGREGATE} over finished seeds")
    for ax in (ax_lr, ax_val):
        ax.set_xlabel("epoch (passes over the training set)")
    legend_outside(ax_val, legend_title(sched))
    best_note = " - each at its best setting of " + " × ".join(short(k) for k in others) if others else ""
    fig.suptitle(f"Learning-rate schedules{best_note}\n{sw.describe()}")
    set_finding(fig, _finding(sw, chosen, sched, others))
    return fig


def best_of_each(
    runs: pd.DataFrame, sched: list[str], others: list[str]
) -> list[tuple[str, tuple, pd.Series | None, pd.DataFrame, pd.DataFrame]]:
    """Per schedule: (label, its values of `sched`, its best configuration of `others` chosen on validation (a
    config_stats row, None when no seed finished), the runs of that configuration, all the schedule's runs)."""
    out = []
    for vals, g in groups(runs, sched):
        best = best_row(config_stats(g, others)) if SELECTION_METRIC in g else None
        pick = g
        if best is not None and others:
            pick = g[np.logical_and.reduce([g[k] == best[k] for k in others])]
        out.append((group_label(sched, vals, runs), vals, best, pick, g))
    return out


def _is_constant(sched: list[str], vals: tuple) -> bool:
    return dict(zip(sched, vals)).get("schedule.name") == "constant"


def _finding(sw: Sweep, chosen: list, sched: list[str], others: list[str]) -> str:
    """Each schedule at its best setting of the other keys (chosen on validation): its validation and test loss
    and whether that best base rate is at the edge of the grid; then the verdict on the lecture's claim: every
    decaying schedule against the best constant rate, a difference counted only when the means are further apart
    than the sum of their SEs, on validation and on test."""
    runs = sw.runs
    if SELECTION_METRIC not in runs:
        return ""
    rows = []
    for name, vals, best, pick, group in chosen:
        if best is None:
            rows.append((name, vals, None, None, ""))
            continue
        test = config_stats(pick, [], "final_test_loss").iloc[0]
        where = ", ".join(f"{short(k)} {value_label(k, best[k], runs)}" for k in others)
        if "lr" in others:
            lrs = sorted(group["lr"].dropna().unique())
            if len(lrs) > 2 and best["lr"] in (lrs[0], lrs[-1]):
                where += " (at the edge of the lr grid: a wider grid might do better)"
        rows.append((name, vals, best, test, where))
    ranked = sorted([r for r in rows if r[2] is not None], key=lambda r: r[2]["mean"], reverse=not lower_is_better())
    if not ranked:
        return "No schedule finished a seed."
    parts = []
    for name, _, best, test, where in ranked:
        at = f" at {where}" if where else ""
        val = pm(best["mean"], best["se"], best["n"])
        parts.append(f"{name}{at}: validation loss {val}, test {pm(test['mean'], test['se'])}")
    text = "Ranked by validation loss, each schedule at its best setting: " + "; ".join(parts) + "."
    const = [r for r in ranked if _is_constant(sched, r[1])]
    decaying = [r for r in ranked if not _is_constant(sched, r[1])]
    if const and decaying:
        text += " " + verdict(const[0], decaying)
    missing = [r[0] for r in rows if r[2] is None]
    if missing:
        text += f" No finished seed: {', '.join(missing)}."
    return text + " " + selection_note()


def _beats(a: pd.Series, b: pd.Series) -> bool:
    """a's mean is better than b's by more than the sum of their SEs (False when an SE is unknown)."""
    gap = (b["mean"] - a["mean"]) if lower_is_better() else (a["mean"] - b["mean"])
    margin = a["se"] + b["se"]
    return bool(np.isfinite(margin) and gap > margin)


def verdict(const: tuple, decaying: list[tuple]) -> str:
    """The claim the data support about decaying schedules against the best constant rate: that some beat it by
    more than their SEs (on validation, and which also on test), that constant beats them, or that constant is
    within SE of every one. Rows are (name, values, validation stats, test stats, where)."""
    _, _, cv, ct, _ = const
    win_val = [r[0] for r in decaying if _beats(r[2], cv)]
    win_test = [r[0] for r in decaying if _beats(r[3], ct)]
    lose = [r[0] for r in decaying if _beats(cv, r[2])]
    if win_val:
        text = (
            f"Decaying schedules beat the best constant rate by more than their SEs on validation: "
            f"{', '.join(win_val)} ({len(win_val)} of {len(decaying)})"
        )
        text += f"; on test too: {', '.join(win_test)}." if win_test else "; on test, none does by more than the SEs."
        return text
    if lose:
        return f"The best constant rate beats {', '.join(lose)} by more than their SEs on validation."
    return "The best constant rate is within SE of every schedule on validation: no schedule beats it here."


if __name__ == "__main__":
    cli(plot_schedules)
