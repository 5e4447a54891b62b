"""The optimizers side by side, each at its own tuned learning rate: per optimizer (optimizer.name, or a student's
class) the rate (and any other swept setting) chosen on the final validation loss (mean over the seeds that
finished; a rate where a seed diverged, collapsed or failed is not chosen), then its validation loss (left) and its
test accuracy (right, reported only: never chosen on) against the epoch, the mean over the finished seeds with a
± standard-error band. The comparison the lecture makes: each optimizer at its best, not all at one rate.

    python -m sweep.analysis.tuned SWEEP [-o out.png]
"""

from __future__ import annotations

import math

import matplotlib.ticker
import pandas as pd

from sweep.analysis._common import (
    AGGREGATE,
    Coincident,
    Skip,
    Sweep,
    cli,
    fit_title,
    fmt,
    group_label,
    groups,
    legend_outside,
    log_y,
    mean_se_by,
    new_figure,
    palette,
    plot_function,
    se_band,
    short,
    unit_interval,
    value_label,
)
from sweep.analysis._findings import best_row, config_stats, pm, selection_note, set_finding
from sweep.results import SELECTION_METRIC, lower_is_better


def optimizer_keys(sw: Sweep) -> list[str]:
    """The config keys that name the optimizer: optimizer.name, optimizer.cls (a student's class), the Hydra
    option, or a preset's own setting (optimizer.betas) that tells two presets of one name apart."""
    return [k for k in sw.config_keys if k.startswith("optimizer.") or k == "choices.optimizer"]


def choose(sw: Sweep) -> list[dict]:
    """Per optimizer (in the sweep's order): its name, its runs, the chosen setting of the other swept keys (the
    learning rate, ...) as a dict, the chosen config's `config_stats` row (None when no setting finished a seed)
    and its runs."""
    opt = optimizer_keys(sw)
    tune = [k for k in sw.config_keys if k not in opt]
    out = []
    for vals, g in groups(sw.runs, opt):
        best = best_row(config_stats(g, tune))
        pick = g
        if best is not None:
            for k in tune:
                pick = pick[pick[k] == best[k]]
        out.append(
            {
                "name": group_label(opt, vals, sw.runs),
                "runs": g,
                "setting": {k: best[k] for k in tune} if best is not None else {},
                "best": best,
                "pick": pick if best is not None else g.iloc[:0],
            }
        )
    return out


def setting_label(setting: dict, runs: pd.DataFrame) -> str:
    """`lr 0.003` (`lr 0.003, schedule=cosine` when more than the rate was tuned)."""
    parts = [
        f"lr {fmt(float(v))}" if k == "lr" else f"{short(k)}={value_label(k, v, runs)}" for k, v in setting.items()
    ]
    return ", ".join(parts)


@plot_function("tuned")
def plot_tuned(sw: Sweep):
    """The optimizers side by side, each at its own learning rate chosen on validation loss."""
    opt = optimizer_keys(sw)
    if not opt or len(groups(sw.runs, opt)) < 2:
        raise Skip(
            "needs the optimizer (optimizer.name, or a custom class) swept over at least two values "
            f"(swept: {', '.join(sw.swept) or 'nothing'})"
        )
    sw.need("lr")
    runs = sw.runs
    if SELECTION_METRIC not in runs or not runs[SELECTION_METRIC].notna().any():
        raise Skip(f"needs a validation split ({SELECTION_METRIC}): the rate is chosen on it, never on test")
    hist = sw.history
    if hist.empty or "val_loss" not in hist or not hist["val_loss"].notna().any():
        raise Skip("needs histories with the validation loss at epoch ends")
    picks = choose(sw)
    right_metric, right_label = (
        ("test_acc", "test accuracy (at epoch ends)")
        if "test_acc" in hist and hist["test_acc"].notna().any()
        else ("test_loss", f"test loss ({sw.loss_unit})")
    )
    fig, axes = new_figure(ncols=2, width=5.6, height=4.4)
    left, right = axes[0]
    cols = palette(opt, runs, len(picks))
    for ax, metric in ((left, "val_loss"), (right, right_metric)):
        drawn = Coincident()  # a student's correct Adam lies exactly on torch's: both must show
        for p, c in zip(picks, cols):
            if p["best"] is None:
                continue
            done = p["pick"].loc[p["pick"]["status"] == "done", "run_id"]
            h = hist[hist["run_id"].isin(done)]
            stats = mean_se_by(h, "epoch", metric) if metric in h else pd.DataFrame()
            if stats.empty:
                continue
            n, of = int(p["best"]["n"]), int(p["best"]["runs"])
            name = f"{p['name']} ({setting_label(p['setting'], runs)}" + (f", n={n}/{of})" if n < of else ")")
            label, style = drawn.style(stats.index, stats["mean"], name)
            (line,) = ax.plot(stats.index, stats["mean"], "o-", markersize=4, color=c, label=label, **style)
            drawn.add(stats.index, stats["mean"], name, line)
            se_band(ax, stats.index, stats["mean"], stats["se"], c)
        ax.set_xlabel("epoch (passes over the training set)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if (hist["val_loss"] > 0).any():
        log_y(left)
    left.set_ylabel(f"validation loss ({sw.loss_unit})")
    fit_title(left, "validation loss: what each rate is chosen on")
    if right_metric == "test_acc":
        right.set_ylabel("test accuracy")
        unit_interval(right)
    else:
        right.set_ylabel(right_label)
        if (hist[right_metric] > 0).any():
            log_y(right)
    fit_title(right, f"{right_label.split(' (')[0]} at the same rates (reported, never chosen on)")
    legend_outside(right, "optimizer (chosen setting)")
    fig.suptitle(
        f"Each optimizer at its own learning rate chosen on validation ({AGGREGATE} over finished seeds)\n"
        f"{sw.describe()}"
    )
    set_finding(fig, finding(sw, picks))
    return fig


def finding(sw: Sweep, picks: list[dict]) -> str:
    """Each optimizer's chosen setting and its final validation loss ± SE (n); the best named only when its mean
    is further from the next one's than the sum of their SEs; a chosen rate at the edge of the grid flagged."""
    runs = sw.runs
    parts, have = [], []
    lrs = sorted(runs["lr"].dropna().unique())
    edge = []
    for p in picks:
        b = p["best"]
        if b is None:
            parts.append(f"**{p['name']}**: no setting finished a seed")
            continue
        text = f"**{p['name']}** at {setting_label(p['setting'], runs)}: {pm(b['mean'], b['se'], b['n'])}"
        if b["blown"] or b["failed"] or b["done"] < b["runs"]:
            text += f" ({int(b['runs'] - b['done'])}/{int(b['runs'])} did not finish: nothing cleaner was left)"
        parts.append(text)
        have.append((p["name"], b))
        lr = p["setting"].get("lr")
        if lr is not None and len(lrs) > 2 and float(lr) in (float(lrs[0]), float(lrs[-1])):
            edge.append(p["name"])
    out = "Each optimizer at its own rate chosen on the final validation loss: " + "; ".join(parts) + "."
    have.sort(key=lambda t: t[1]["mean"], reverse=not lower_is_better(SELECTION_METRIC))
    if len(have) > 1:
        (a, ra), (b, rb) = have[0], have[1]
        gap, margin = abs(rb["mean"] - ra["mean"]), ra["se"] + rb["se"]
        if math.isfinite(margin) and gap > margin:
            out += f" Best: **{a}**, separated from the next ({b}) by more than their SEs."
        elif math.isfinite(margin):
            out += f" No single best: {a} and {b} are within their SEs of each other."
        else:
            out += f" Lowest mean: {a}, next {b} (one seed each: no SE to tell them apart)."
    if edge:
        out += f" The chosen rate is at the edge of the lr grid for {', '.join(edge)}: a wider grid might do better."
    return out + " " + selection_note()


if __name__ == "__main__":
    cli(plot_tuned)
