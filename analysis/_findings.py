"""The finding of a plot in words: per configuration the mean ± standard error of the selection metric (the
validation loss: every choice is made on it, never on test) over the seeds that finished, with n and the runs
that blew up counted; the best configuration (only among those whose every seed finished, unless none did), and
the range of a numeric key (the learning rate) whose mean stays within a factor of the best. `sweep report`
writes the sentence under the plot (`set_finding`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sweep.analysis._common import BLOWN_UP, groups, mean_se, value_label
from sweep.results import SELECTION_METRIC, lower_is_better, metric_name


def set_finding(fig, text: str | None) -> None:
    """Attach the plot's finding (one paragraph of markdown) to its figure: `plot_function` hands it to the
    report as `fn.last_finding`."""
    fig.sweep_finding = text or None


def config_stats(runs: pd.DataFrame, keys: Sequence[str], metric: str = SELECTION_METRIC) -> pd.DataFrame:
    """One row per configuration of `keys`: the keys, `runs`, `done`, `blown` (diverged or collapsed),
    `failed`, and `mean`, `se`, `n` of `metric` over the finished (done) seeds."""
    rows = []
    for vals, g in groups(runs, list(keys)):
        status = g["status"]
        ok = g.loc[status == "done", metric] if metric in g else pd.Series(dtype=float)
        m, se, n = mean_se(ok)
        rows.append(
            {
                **dict(zip(keys, vals)),
                "runs": len(g),
                "done": int((status == "done").sum()),
                "blown": int(status.isin(BLOWN_UP).sum()),
                "failed": int((status == "failed").sum()),
                "mean": m,
                "se": se,
                "n": n,
            }
        )
    return pd.DataFrame(rows)


def best_row(stats: pd.DataFrame, metric: str = SELECTION_METRIC) -> pd.Series | None:
    """The configuration with the best mean `metric`, among those whose every seed finished (a configuration
    that diverged in one seed is not chosen for the seeds that survived); among all, when none is clean; None
    when nothing finished."""
    if stats.empty:
        return None
    have = stats[stats["mean"].notna()]
    clean = have[(have["blown"] == 0) & (have["failed"] == 0) & (have["done"] == have["runs"])]
    pool = clean if len(clean) else have
    if pool.empty:
        return None
    i = pool["mean"].idxmin() if lower_is_better(metric) else pool["mean"].idxmax()
    return pool.loc[i]


def pm(mean: float, se: float, n: int | None = None) -> str:
    """`0.123 ± 0.004 (n=3)`; the mean alone when SE is unknown."""
    if mean is None or not math.isfinite(mean):
        return "-"
    text = f"{mean:.3g} ± {se:.2g}" if se is not None and math.isfinite(se) else f"{mean:.3g}"
    return text + (f" (n={int(n)})" if n is not None else "")


def within_factor(stats: pd.DataFrame, key: str, best: pd.Series, factor: float = 2.0) -> tuple[float, float]:
    """The contiguous range of `key` values around the best whose mean (lower-is-better metric) is within
    `factor` of the best mean and none of whose seeds blew up or failed: (lowest, highest)."""
    s = stats.sort_values(key).reset_index(drop=True)
    at = int(np.flatnonzero(s[key].to_numpy() == best[key])[0])

    def ok(i: int) -> bool:
        r = s.iloc[i]
        return bool(
            math.isfinite(r["mean"]) and r["mean"] <= factor * best["mean"] and r["blown"] == 0 and r["failed"] == 0
        )

    lo = hi = at
    while lo - 1 >= 0 and ok(lo - 1):
        lo -= 1
    while hi + 1 < len(s) and ok(hi + 1):
        hi += 1
    return float(s.iloc[lo][key]), float(s.iloc[hi][key])


def span(lo: float, hi: float) -> str:
    return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"


def blown_text(stats: pd.DataFrame, key: str, runs: pd.DataFrame | None = None) -> str:
    """`diverged or collapsed at lr 0.3 (1/3), 1 (3/3)`; "" when nothing blew up."""
    bad = stats[stats["blown"] > 0]
    if bad.empty:
        return ""
    where = ", ".join(
        f"{value_label(key, r[key], runs)} ({int(r['blown'])}/{int(r['runs'])})" for _, r in bad.iterrows()
    )
    return f"blew up (diverged or collapsed) at {key} {where}"


def selection_note(metric: str = SELECTION_METRIC) -> str:
    return (
        f"Chosen on the {metric_name(metric).replace(' val ', ' validation ')} (mean ± SE over the seeds that "
        "finished, n of them); a setting where any seed diverged, collapsed or failed is not chosen."
    )


def ranking(runs: pd.DataFrame, keys: Sequence[str], metric: str = SELECTION_METRIC) -> str:
    """Configurations ranked by mean `metric` (validation loss) with SE and n, blow-ups counted, and whether the
    best is distinguishable from the next (means further apart than the sum of their SEs)."""
    if metric not in runs:
        return ""
    stats = config_stats(runs, keys, metric)
    if stats.empty:
        return ""
    stats = stats.sort_values("mean", ascending=lower_is_better(metric), na_position="last", kind="stable")
    parts = []
    for _, r in stats.iterrows():
        name = ", ".join(f"{value_label(k, r[k], runs)}" for k in keys) if keys else "all runs"
        bad = f", {int(r['blown'])}/{int(r['runs'])} blew up" if r["blown"] else ""
        parts.append(f"{name}: {pm(r['mean'], r['se'], r['n'])}{bad}")
    text = f"Ranked by {metric_name(metric).replace(' val ', ' validation ')}: " + "; ".join(parts) + "."
    have = stats[stats["mean"].notna()]
    if len(have) > 1:
        a, b = have.iloc[0], have.iloc[1]
        gap, margin = abs(b["mean"] - a["mean"]), a["se"] + b["se"]
        if math.isfinite(margin):
            verdict = "distinguishable from" if gap > margin else "not distinguishable (within their SEs) from"
            text += f" The best is {verdict} the next."
    return text
