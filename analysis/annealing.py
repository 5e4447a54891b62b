"""Gradient-free against gradient methods per unit of cost: the train loss against compute, counted in
forward-pass equivalents over the training set (a forward pass of the model over as many examples as the training
set holds = 1). A gradient step is a forward and a backward pass, and a backward pass costs about 2 forwards: 3
per full-batch step. A simulated-annealing step evaluates the loss of its proposal, and of its current point too
unless the batch repeats (a full batch in a fixed order: the loss the last step ended at is reused): the run's
`loss_evals` per step, 1 (or 2). Each optimizer at its learning rate chosen on validation loss (mean ± standard
error over the seeds that finished); and annealing at every proposal scale (lr), to show how much its result
depends on it.

    python -m sweep.analysis.annealing SWEEP [-o out.png]
"""

from __future__ import annotations

import pandas as pd

from sweep.analysis._common import (
    AGGREGATE,
    Skip,
    Sweep,
    cli,
    colors,
    fit_title,
    fmt,
    legend_outside,
    log_x,
    log_y,
    mean_se_by,
    new_figure,
    plot_function,
    se_band,
    sequential_colors,
)
from sweep.analysis._findings import best_row, config_stats, pm, selection_note, set_finding
from sweep.results import SELECTION_METRIC

ANNEAL = "anneal"
BACKWARD_FORWARDS = 2.0  # a backward pass costs about two forward passes (two matrix products per layer)
GRADIENT_STEP = 1.0 + BACKWARD_FORWARDS  # forward-pass equivalents of one gradient step on its batch
COST = "forward-pass equivalents"


def forwards_per_step(runs: pd.DataFrame) -> pd.Series:
    """Per run: the cost of one optimizer step in forward passes over the training set: `per_batch_step` x batch
    / training-set size."""
    n = pd.to_numeric(runs.get("n_train"), errors="coerce").astype(float)
    batch = pd.to_numeric(runs["batch_size"], errors="coerce").astype(float).fillna(n)
    frac = (batch.clip(upper=n) / n).where(n > 0, 1.0).fillna(1.0)
    return per_batch_step(runs) * frac


def per_batch_step(runs: pd.DataFrame) -> pd.Series:
    """Per run: forward-pass equivalents of one step on its batch: loss_evals / step for a method that counts its
    loss evaluations (annealing: 1 when it reuses the last step's loss, else 2), 3 for a gradient method (forward
    + backward)."""
    steps = pd.to_numeric(runs["step"], errors="coerce").astype(float)
    per = pd.Series(GRADIENT_STEP, index=runs.index)
    if "loss_evals" in runs:
        le = pd.to_numeric(runs["loss_evals"], errors="coerce").astype(float)
        per = (le / steps).where(le.notna() & (steps > 0), GRADIENT_STEP)
    return per


def _anneal_cost(runs: pd.DataFrame) -> str:
    """Annealing's forward-pass equivalents per step on its batch, from its runs' loss_evals: "1", or "1-2"
    when its runs differ."""
    vals = sorted({round(float(v), 2) for v in per_batch_step(runs[runs["optimizer.name"] == ANNEAL]).dropna()})
    return "?" if not vals else f"{vals[0]:g}" if len(vals) == 1 else f"{vals[0]:g}-{vals[-1]:g}"


def _curve(hist: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SE of the train loss over the finished runs of `runs`, against cost (forward-pass equivalents)."""
    done = runs[runs["status"] == "done"]
    per = forwards_per_step(done).set_axis(done["run_id"])
    h = hist[hist["run_id"].isin(done["run_id"])].dropna(subset=["train_loss"]).copy()
    h["cost"] = h["step"] * h["run_id"].map(per)  # `step`: the steps done when the row was logged
    return mean_se_by(h, "cost", "train_loss")


def _chosen(runs: pd.DataFrame, opt) -> tuple[pd.DataFrame, pd.Series | None]:
    g = runs[runs["optimizer.name"] == opt]
    best = best_row(config_stats(g, ["lr"])) if "lr" in g else best_row(config_stats(g, []))
    if best is None:
        return g.iloc[:0], None
    return (g[g["lr"] == best["lr"]] if "lr" in g else g), best


@plot_function("annealing")
def plot_annealing(sw: Sweep):
    """Simulated annealing vs gradient methods: train loss against forward-pass equivalents, each at its best lr."""
    runs = sw.runs
    if "optimizer.name" not in runs or not (runs["optimizer.name"] == ANNEAL).any():
        raise Skip("needs optimizer=anneal among the runs (swept: " + (", ".join(sw.swept) or "nothing") + ")")
    if not sw.has("optimizer.name"):
        raise Skip("needs optimizer swept over at least two values (annealing and a gradient method)")
    hist = sw.history
    if hist.empty:
        raise Skip("no run has a history.parquet yet")
    fig, axes = new_figure(ncols=2, width=5.8, height=4.3)
    left, right = axes[0]
    opts = [o for o in pd.unique(runs["optimizer.name"])]
    chosen = {}
    for opt, c in zip(opts, colors(len(opts))):
        g, best = _chosen(runs, opt)
        if best is None:
            continue
        chosen[opt] = (g, best)
        stats = _curve(hist, g)
        lr = f" (lr={fmt(float(best['lr']))})" if "lr" in best else ""
        left.plot(stats.index, stats["mean"], color=c, label=f"{opt}{lr}")
        se_band(left, stats.index, stats["mean"], stats["se"], c)
    ann = runs[runs["optimizer.name"] == ANNEAL]
    lrs = sorted(ann["lr"].dropna().unique()) if "lr" in ann else []
    for lr, c in zip(lrs, sequential_colors(len(lrs))):
        g = ann[ann["lr"] == lr]
        stats = _curve(hist, g)
        bad = int((g["status"] != "done").sum())
        label = f"lr={fmt(float(lr))}" + (f" ({bad}/{len(g)} not done)" if bad else "")
        if not stats.empty:
            right.plot(stats.index, stats["mean"], color=c, label=label)
            se_band(right, stats.index, stats["mean"], stats["se"], c)
    for ax in (left, right):
        log_x(ax)
        log_y(ax)
        ax.set_xlabel(f"cost ({COST} over the training set, log scale)")
    for ax in (left, right):
        ax.set_ylabel(f"train loss ({sw.loss_unit})")
    fit_title(left, "each optimizer at its lr chosen on validation", width_in=4.6)
    fit_title(right, "annealing at every proposal scale (lr)", width_in=4.6)
    legend_outside(left, "optimizer")
    legend_outside(right, "annealing")
    fig.suptitle(
        f"Simulated annealing vs gradient methods per unit of compute\n({COST}: an annealing step "
        f"{_anneal_cost(runs)}, a gradient step {GRADIENT_STEP:g}: forward + backward) · {AGGREGATE} over finished "
        f"seeds\n{sw.describe()}"
    )
    set_finding(fig, _finding(sw, hist, chosen))
    return fig


def _finding(sw: Sweep, hist: pd.DataFrame, chosen: dict) -> str:
    """Annealing's result at its chosen lr, and the compute each gradient method needed to reach it."""
    if ANNEAL not in chosen or SELECTION_METRIC not in sw.runs:
        return ""
    g, best = chosen[ANNEAL]
    curve = _curve(hist, g)
    if curve.empty:
        return ""
    final_train, evals = float(curve["mean"].iloc[-1]), float(curve.index[-1])
    test = config_stats(g, [], "final_test_loss").iloc[0]
    text = (
        f"Annealing at its best proposal scale lr {fmt(float(best['lr']))}: validation loss "
        f"{pm(best['mean'], best['se'], best['n'])}, test {pm(test['mean'], test['se'])}, train loss "
        f"{final_train:.3g} after {evals:,.0f} {COST} ({_anneal_cost(sw.runs)} per step; a gradient step costs "
        f"{GRADIENT_STEP:g}: forward + backward)."
    )
    for opt, (go, bo) in chosen.items():
        if opt == ANNEAL:
            continue
        c = _curve(hist, go)
        reach = c.index[c["mean"].to_numpy() <= final_train]
        when = f"after {float(reach[0]):,.0f} {COST}" if len(reach) else "never within the run"
        to = config_stats(go, [], "final_test_loss").iloc[0]
        text += (
            f" {opt} (lr {fmt(float(bo['lr']))}) reaches that train loss {when} (mean over seeds) and ends at "
            f"validation loss {pm(bo['mean'], bo['se'], bo['n'])}, test {pm(to['mean'], to['se'])}."
        )
    ann = sw.runs[sw.runs["optimizer.name"] == ANNEAL]
    if "lr" in ann and ann["lr"].nunique() > 1:
        st = config_stats(ann, ["lr"])
        lo, hi = st.loc[st["mean"].idxmin()], st.loc[st["mean"].idxmax()]
        text += (
            f" Annealing's validation loss spans {lo['mean']:.3g} (lr {fmt(float(lo['lr']))}) to {hi['mean']:.3g} "
            f"(lr {fmt(float(hi['lr']))}) over its proposal scales."
        )
    return text + " " + selection_note()


if __name__ == "__main__":
    cli(plot_annealing)
