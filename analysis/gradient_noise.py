"""Why small batches are noisy: the variance of the minibatch gradient around the full-batch gradient,
E‖g_B − g‖², against the batch size B, measured on the sweep's training set and model (per-example gradients
once, then minibatches drawn without replacement per B as sets of indices, until the standard error is 1 % of
the estimate; error bars ± SE; B = 1 exact, from all N examples), at the initialisation of seed 0 and at the end of
training (the finished run with the best validation loss). Sampling without replacement from N examples gives
exactly tr(Σ)/B · (N − B)/(N − 1) (Σ the per-example gradient covariance): ∝ 1/B until B nears N, and 0 for the
full batch.

    python -m sweep.analysis.gradient_noise SWEEP [-o out.png]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sweep.analysis._common import Skip, Sweep, cli, fit_title, log_y, new_figure, no_minor_x, plot_function
from sweep.analysis._findings import best_row, config_stats, set_finding

DRAWS = 2000  # the most minibatches drawn per batch size (fewer once the estimate is precise: REL_SE)
ROUND = 100  # minibatches per round of drawing; the precision is checked after each round
REL_SE = 0.01  # stop drawing at a batch size once the standard error is below this fraction of the estimate
GRAM_MAX_N = 4096  # up to this many examples the draws read D Dᵀ (N² numbers, 64 MiB in float32)
CHUNK_ELEMENTS = 2**24  # gradient entries gathered at once (64 MiB of float32): bounds the memory of a round


class Noise(NamedTuple):
    """`minibatch_variance`'s result, one entry per batch size: the measured E‖g_B − g‖², its standard error over
    the draws (0 where it is exact: B = 1 and the full batch), the exact value tr(Σ)/B · (N − B)/(N − 1), and
    how many minibatches were drawn (0 where nothing was sampled)."""

    measured: np.ndarray
    se: np.ndarray
    exact: np.ndarray
    draws: np.ndarray


def per_example_grads(params: list, x, y, activation: str, task: str):
    """Per-example gradients [N, P] (all parameters flattened) of one model's loss, params unstacked."""
    import torch
    from torch.func import grad, vmap

    from sweep.model import forward, per_model_loss

    def loss_one(ps, xi, yi):
        out = forward([p.unsqueeze(0) for p in ps], xi.unsqueeze(0), activation)
        target = yi.view(1, 1) if task == "classification" else yi.view(1, 1, -1)
        return per_model_loss(out, target, task)[0]

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))(tuple(p.detach() for p in params), x, y)
    return torch.cat([gi.reshape(len(x), -1) for gi in g], dim=1)


def minibatch_variance(
    G, sizes, draws: int = DRAWS, seed: int = 0, rel_se: float = REL_SE, round_size: int = ROUND
) -> Noise:
    """E‖g_B − g‖² per batch size B from the per-example gradients G [N, P] (g their mean), measured by drawing
    minibatches without replacement from G, in rounds of `round_size` up to `draws` per B, stopping once the
    standard error is below `rel_se` of the estimate; beside it the exact tr(Σ)/B · (N − B)/(N − 1) (Σ the
    covariance, 1/N). B = 1 is not sampled: the mean of ‖G_i − g‖² over all N examples is its exact value (a
    few thousand draws of a heavy-tailed ‖G_i − g‖² miss it by tens of per cent). The full batch is one draw."""
    import torch

    n = G.shape[0]
    centred = G - G.mean(0)
    sq = (centred**2).sum(1)
    tr = float(sq.mean())
    gen = torch.Generator().manual_seed(seed)
    # one N×N product, then each draw reads B² of its numbers instead of summing B rows of P (P ≫ B)
    gram = centred @ centred.T if 1 < n <= GRAM_MAX_N else None
    out = {f: [] for f in Noise._fields}
    for b in sizes:
        b = int(min(b, n))
        if b == 1:
            values = sq.double()  # every example once: the exact per-example variance
            m, se, k = float(values.mean()), 0.0, 0
        elif b >= n:
            m, se, k = float((centred.sum(0) ** 2).sum()) / n**2, 0.0, 1  # 0 up to rounding
        else:
            m, se, k = _sampled(centred, gram, b, draws, rel_se, round_size, gen)
        out["measured"].append(m)
        out["se"].append(se)
        out["exact"].append(tr / b * (n - b) / (n - 1) if n > 1 else 0.0)
        out["draws"].append(k)
    return Noise(**{f: np.array(v) for f, v in out.items()})


def _sampled(centred, gram, b: int, draws: int, rel_se: float, round_size: int, gen) -> tuple[float, float, int]:
    """(mean, standard error, draws) of ‖Σ_{i∈S} D_i‖² / B² over minibatches S of B rows of `centred` (D, whose
    rows sum to zero) drawn without replacement, in rounds until the SE is below `rel_se` of the mean; from
    `gram` = D Dᵀ when given."""
    import torch

    n, p = centred.shape
    # D's rows sum to zero, so a minibatch's sum is minus the sum of the rows it leaves out: draw the smaller side
    side = min(b, n - b)
    per_draw = side * side if gram is not None else side * p
    chunk = max(1, CHUNK_ELEMENTS // per_draw)
    values: list[float] = []
    while len(values) < draws:
        want = min(round_size, draws - len(values))
        while want > 0:
            rows = min(chunk, want)
            idx = torch.rand(rows, n, generator=gen).topk(side, dim=1).indices  # without replacement, per draw
            if gram is not None:  # ‖Σ_S D_i‖² = Σ_{i,j∈S} D_i·D_j: side² numbers, not side·P
                sq = gram[idx[:, :, None], idx[:, None, :]].sum((1, 2))
            else:
                sq = (centred[idx].sum(1) ** 2).sum(1)
            values += (sq.double() / b**2).tolist()
            want -= rows
        v = np.array(values)
        se = float(v.std(ddof=1) / np.sqrt(len(v)))
        if se <= rel_se * abs(float(v.mean())):
            break
    return float(v.mean()), se, len(v)


def _setup(sw: Sweep, run_id: str):
    """(cfg, data, initial params of seed 0, final params of run_id) from the run's stored config and checkpoint."""
    import torch

    from sweep.data import cached_splits
    from sweep.model import init_params, layer_sizes
    from sweep.sampling import generator
    from sweep.store import load_start, scan

    rec = scan(sw.dir)[run_id]
    cfg = rec.config
    data = cached_splits(cfg["data"], device="cpu", dtype=torch.float32)
    sizes = layer_sizes(data.num_inputs, cfg["model"]["hidden"], data.num_outputs)
    init = init_params(sizes, [cfg["init"]], [generator(0)], dtype=torch.float32, device=torch.device("cpu"))
    start = [p[0] for p in init]
    end = None
    ck = load_start(rec, {})
    if ck is not None:
        end = [p.float() for p in ck["params"]]
    return cfg, data, start, end


@plot_function("gradient_noise")
def plot_gradient_noise(sw: Sweep):
    """Gradient noise: variance of the minibatch gradient around the full gradient vs batch size (∝ 1/B)."""
    sw.need("batch_size")
    runs = sw.runs
    done = runs[runs["status"] == "done"]
    if done.empty:
        raise Skip("no finished run to read the model and data from")
    best = best_row(config_stats(runs, sw.config_keys))
    pick = done
    if best is not None:
        for k in sw.config_keys:
            pick = pick[pick[k] == best[k]]
    rid = str((pick if len(pick) else done)["run_id"].iloc[0])
    cfg, data, start, end = _setup(sw, rid)
    n = data.x_train.shape[0]
    sizes = sorted({1, 4, 16, 64, 256, 1024, n} | {int(b) for b in runs["batch_size"].dropna() if b <= n})
    sizes = [b for b in sizes if b <= n]
    fig, axes = new_figure(ncols=1, width=10.0, height=5.0)
    ax = axes[0][0]
    lines = []
    legend = []  # in reading order: each point's measurement, then its laws
    act, task = cfg["model"]["activation"], data.task
    points = ((start, "at initialisation (seed 0)", "tab:blue"), (end, f"after training (run {rid})", "tab:orange"))
    for params, name, c in points:
        if params is None:
            continue
        G = per_example_grads(params, data.x_train, data.y_train, act, task)
        noise = minibatch_variance(G, sizes)
        measured, exact = noise.measured, noise.exact
        part = np.array([b < n for b in sizes])
        bs = np.array(sizes, dtype=float)
        sampled = noise.draws[part & (bs > 1)]
        drew = f"{sampled.min()}–{sampled.max()}" if len(sampled) and sampled.min() < sampled.max() else "≥ 1"
        drew = f"{sampled.max()}" if len(sampled) and sampled.min() == sampled.max() else drew
        bars = ax.errorbar(
            bs[part],
            measured[part],
            yerr=noise.se[part],
            fmt="o",
            color=c,
            capsize=3,
        )
        (law,) = ax.plot(bs[part], exact[part], "-", color=c, alpha=0.7)
        (inv,) = ax.plot(bs[part], exact[0] * bs[0] / bs[part], ":", color=c, alpha=0.8)
        legend += [
            (bars, f"{name}:\nmeasured ± SE ({drew} batches per B;\nB=1 exact, all N examples)"),
            (law, "  tr(Σ)/B · (N−B)/(N−1)"),
            (inv, "  ∝ 1/B"),
        ]
        lines.append((name, measured, exact))
    ax.set_xscale("log", base=2)
    shown = [b for b in sizes if b < n]
    ax.set_xticks(shown, [str(b) for b in shown])
    no_minor_x(ax)
    log_y(ax)
    ax.set_xlabel(f"batch size B (log2 scale; the full batch N = {n} has no noise)")
    ax.set_ylabel("E‖g_B − g‖²  (squared norm)")
    fit_title(ax, "variance of the minibatch gradient g_B around the full-batch gradient g", width_in=7.5)
    ax.legend(*zip(*legend), loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
    fig.suptitle(f"Gradient noise vs batch size\n{sw.describe()}")
    parts = []
    for name, measured, exact in lines:
        i16, i64 = sizes.index(16) if 16 in sizes else 0, sizes.index(256) if 256 in sizes else -2
        parts.append(
            f"{name}: E‖g_B − g‖² = {measured[i16]:.3g} at B={sizes[i16]} and {measured[i64]:.3g} at B={sizes[i64]} "
            f"(ratio {measured[i16] / measured[i64]:.3g}; 1/B predicts {sizes[i64] / sizes[i16]:.3g} before the "
            f"finite-N factor, {exact[i16] / exact[i64]:.3g} with it)"
        )
    set_finding(fig, "; ".join(parts) + ". A minibatch step is cheaper by N/B but its direction noisier by ∝ 1/B.")
    return fig


if __name__ == "__main__":
    cli(plot_gradient_noise)
