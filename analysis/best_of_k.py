"""Restarts as a strategy: train k times (k seeds), keep the run with the best validation loss. Per optimizer (each
combination of the swept keys but lr and seed) at its learning rate chosen on validation: the distribution of
the final validation loss over the seeds (left), and the expected best-of-k curve (right): the expected lowest
validation loss of k restarts drawn from the n seeds (exact, over all k-subsets), with a bootstrap band (the
seeds resampled), for k up to n/2 only (at k = n it is the sample's one best seed), and the expected test loss
of the restart that validation picks (dashed); the finding says what keeping the best of 5 does to the test loss
against one run, with a paired bootstrap interval (lower, higher, or no change the seeds can tell). A run that
diverged or collapsed counts as an infinite loss: it is never picked unless all k blew up; where that can happen
the curve is not drawn (and the finding says so).

    python -m sweep.analysis.best_of_k SWEEP [-o out.png]
"""

from __future__ import annotations

import math

import numpy as np

from sweep.analysis._common import (
    AGGREGATE,
    BLOWN_UP,
    Skip,
    Sweep,
    cli,
    fit_title,
    fmt,
    group_label,
    groups,
    legend_outside,
    log_x,
    mean_se,
    new_figure,
    note_right,
    palette,
    plot_function,
    seed_row,
)
from sweep.analysis._findings import best_row, config_stats, pm, selection_note, set_finding
from sweep.results import SELECTION_METRIC

MIN_SEEDS = 5
BOOTSTRAP = 400  # resamples of the seeds for the band around the expected best-of-k curve
BAND = 0.9  # the band's coverage


def max_k(n: int) -> int:
    """The largest k drawn of n seeds: n/2. Near n every k-subset shares most of its seeds (at k = n all of
    them): the 'expected best of k' is then the sample's one best seed, not an expectation."""
    return max(1, n // 2)


def bootstrap_band(val: np.ndarray, draws: int = BOOTSTRAP, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the BAND interval of `expected_best_of_k(val)` for k = 1..max_k(n), resampling the n seeds
    with replacement `draws` times; inf where a resample's curve is (all k could blow up), NaN with one seed."""
    val = np.asarray(val, dtype=float)
    n, kmax = len(val), max_k(len(val))
    if n < 2:
        return np.full(kmax, np.nan), np.full(kmax, np.nan)
    rng = np.random.default_rng(seed)
    curves = np.array([expected_best_of_k(val[rng.integers(0, n, n)])[0][:kmax] for _ in range(draws)])
    tail = (1 - BAND) / 2  # no interpolation: a quantile next to an inf is inf, not NaN
    return np.quantile(curves, tail, axis=0, method="lower"), np.quantile(curves, 1 - tail, axis=0, method="higher")


def bootstrap_test_gain(
    val: np.ndarray, test: np.ndarray, k: int, draws: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float, float]:
    """What keeping the best of k restarts (on validation) does to the test loss, against one run: E[test of the
    run validation picks of k] − E[test of one run], with the BAND interval of the same difference over `draws`
    resamples of the n seeds (paired: both terms from one resample). (point, low, high); NaN where it is not
    finite (all k could blow up) or with one seed."""
    val, test = np.asarray(val, dtype=float), np.asarray(test, dtype=float)
    n = len(val)

    def gain(v: np.ndarray, t: np.ndarray) -> float:
        chosen = expected_best_of_k(v, t)[1]
        return float(chosen[k - 1] - chosen[0]) if np.all(np.isfinite(chosen[[0, k - 1]])) else np.nan

    point = gain(val, test)
    if n < 2 or not np.isfinite(point):
        return point, np.nan, np.nan
    rng = np.random.default_rng(seed)
    draws_ = np.array([gain(val[i], test[i]) for i in (rng.integers(0, n, n) for _ in range(draws))])
    draws_ = draws_[np.isfinite(draws_)]
    tail = (1 - BAND) / 2
    return point, float(np.quantile(draws_, tail)), float(np.quantile(draws_, 1 - tail))


def expected_best_of_k(val: np.ndarray, test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For k = 1..n: E[min of k of the n values `val` drawn without replacement] and E[test value of that
    minimiser] (NaN without `test`). Exact: the i-th smallest (0-based) is the minimum of a k-subset with
    probability C(n-1-i, k-1) / C(n, k). Non-finite values (runs that blew up) count as +inf: the expectation is
    inf where a k-subset of only those has non-zero probability."""
    val = np.asarray(val, dtype=float)
    val = np.where(np.isfinite(val), val, np.inf)
    order = np.argsort(val, kind="stable")
    v = val[order]
    t = np.asarray(test, dtype=float)[order] if test is not None else np.full(len(v), np.nan)
    n = len(v)
    best, chosen = np.empty(n), np.empty(n)
    for k in range(1, n + 1):
        p = np.array([math.comb(n - 1 - i, k - 1) for i in range(n)], dtype=float) / math.comb(n, k)
        used = p > 0
        bad = used & ~np.isfinite(v)
        best[k - 1] = np.inf if bad.any() else float(np.dot(p[used], v[used]))
        chosen[k - 1] = np.inf if bad.any() else float(np.dot(p[used], t[used]))
    return best, chosen


def _test_gain_text(val: np.ndarray, test: np.ndarray, k: int) -> str:
    """The test-loss change of keeping the best of k restarts, with its bootstrap interval and what it says:
    lower or higher when the interval excludes 0, else no change the seeds can tell."""
    d, lo, hi = bootstrap_test_gain(val, test, k)
    if not np.isfinite(d):
        return ""
    if np.isfinite(lo) and hi < 0:
        says = "a lower test loss"
    elif np.isfinite(lo) and lo > 0:
        says = "a higher test loss: validation picks on noise"
    else:
        says = "no test-loss change the seeds can tell apart from none"
    band = f" ({BAND:.0%} bootstrap {lo:+.3g} to {hi:+.3g})" if np.isfinite(lo) else ""
    return f"best of {k} against one run: test {d:+.3g}{band}, {says}"


@plot_function("best_of_k")
def plot_best_of_k(sw: Sweep):
    """Restarts: the spread of the final validation loss and the expected best of k restarts, each at its tuned lr."""
    sw.need("seed")
    if sw.n_seeds < MIN_SEEDS:
        raise Skip(f"needs seed swept over at least {MIN_SEEDS} values (has {sw.n_seeds})")
    runs = sw.runs
    if SELECTION_METRIC not in runs:
        raise Skip(f"needs {SELECTION_METRIC} in the runs' summaries (a validation split)")
    hue = [k for k in sw.config_keys if k != "lr"]
    gs = groups(runs, hue)
    cols = palette(hue, runs, len(gs))
    fig, axes = new_figure(ncols=2, width=5.8, height=max(4.0, 0.45 * len(gs) + 1.8))
    left, right = axes[0]
    rng = np.random.default_rng(0)
    parts = []
    labels = []
    for i, ((vals, g), c) in enumerate(zip(gs, cols)):
        name = group_label(hue, vals, runs) if hue else "all runs"
        if "lr" in sw.config_keys:
            best = best_row(config_stats(g, ["lr"]))
            if best is None:
                parts.append(f"**{name}**: no rate finished a seed.")
                continue
            g = g[g["lr"] == best["lr"]]
            name += f" (lr={fmt(float(best['lr']))})"
        y = len(gs) - 1 - i
        labels.append((y, name, c))
        ok = g.loc[g["status"] == "done", SELECTION_METRIC].dropna().to_numpy(float)
        if len(ok):
            seed_row(left, y, ok, c, rng, of=len(g))
        bad = int(g["status"].isin(BLOWN_UP).sum()) + int((g["status"] == "failed").sum())
        if bad:
            note_right(left, y, f"✕ {bad}/{len(g)} not done")
        val = g[SELECTION_METRIC].where(g["status"] == "done").to_numpy(float)
        test = g["final_test_loss"].to_numpy(float) if "final_test_loss" in g else None
        kmax = max_k(len(val))
        exp_val, exp_test = (e[:kmax] for e in expected_best_of_k(val, test))
        lo, hi = bootstrap_band(val)
        ks = np.arange(1, kmax + 1)
        fin = np.isfinite(exp_val)
        right.plot(ks[fin], exp_val[fin], "o-", color=c, markersize=3.5, label=f"{name}: validation (best of k)")
        band = np.isfinite(lo) & np.isfinite(hi)
        right.fill_between(ks[band], lo[band], hi[band], color=c, alpha=0.18, linewidth=0)
        if test is not None:
            right.plot(ks[fin], exp_test[fin], "--", color=c, label=f"{name}: test of that run")
        m, se, n = mean_se(ok)
        k5 = min(5, kmax)
        text = (
            f"**{name}**: final validation loss {pm(m, se, n)} over seeds, sd {np.std(ok, ddof=1):.2g}, range "
            f"{ok.min():.3g}–{ok.max():.3g}" + (f", {bad}/{len(g)} not done" if bad else "")
            if len(ok) > 1
            else f"**{name}**: {len(ok)} finished seed(s)"
        )
        if fin.any():
            text += (
                f"; expected best of {k5}: {exp_val[k5 - 1]:.3g} validation "
                f"({BAND:.0%} bootstrap over seeds {lo[k5 - 1]:.3g}–{hi[k5 - 1]:.3g})"
            )
            if test is not None and np.isfinite(exp_test[k5 - 1]):
                text += f", test {exp_test[k5 - 1]:.3g} for the run validation picks"
                if k5 > 1:
                    text += "; " + _test_gain_text(val, test, k5)
            k1, kn = int(np.flatnonzero(fin)[0]), kmax - 1
            if test is not None and kn > k1 and np.isfinite(exp_test[kn]):
                text += (
                    f"; from k={k1 + 1} to k={kn + 1} the expected best validation loss goes {exp_val[k1]:.3g} → "
                    f"{exp_val[kn]:.3g}, the test loss of the picked run {exp_test[k1]:.3g} → {exp_test[kn]:.3g}"
                )
        if not fin.all():
            text += f" (best of k ≤ {int((~fin).sum())} not drawn: all k restarts could have blown up)"
        parts.append(text + ".")
    left.set_yticks([y for y, _, _ in labels], [t for _, t, _ in labels])
    for tick, (_, _, c) in zip(left.get_yticklabels(), labels):
        tick.set_color(c)
    left.set_ylim(-0.7, len(gs) - 0.3)
    left.grid(axis="y", visible=False)
    log_x(left)
    left.set_xlabel(f"final validation loss ({sw.loss_unit}, log scale)")
    fit_title(left, f"each dot a seed, bar = {AGGREGATE}")
    right.set_ylim(bottom=0)  # linear: the gains are a fraction of the loss
    right.set_xlabel("k restarts (seeds), keep the best on validation")
    right.set_ylabel(f"expected loss ({sw.loss_unit})")
    fit_title(
        right,
        f"expected best of k, k ≤ n/2: validation (solid; band: {BAND:.0%} bootstrap over seeds), test of the run "
        "it picks (dashed)",
        width_in=5.2,
    )
    legend_outside(right)
    fig.suptitle(f"Restarts, each optimizer at its lr chosen on validation: spread and best of k\n{sw.describe()}")
    stop = (
        f"Best of k is drawn for k ≤ n/2 (n = {sw.n_seeds} seeds), with a {BAND:.0%} bootstrap band over the seeds: "
        "near k = n every k-subset holds the same seeds, so the curve would only repeat the sample's best seed."
    )
    set_finding(fig, " ".join(parts) + " " + stop + " " + selection_note())
    return fig


if __name__ == "__main__":
    cli(plot_best_of_k)
