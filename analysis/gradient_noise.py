"""Why small batches are noisy: the variance of the minibatch gradient around the full-batch gradient,
E‖g_B − g‖², against the batch size B, measured on the sweep's training set and model (per-example gradients,
then many minibatches drawn without replacement per B), at the initialisation of seed 0 and at the end of
training (the finished run with the best validation loss). Sampling without replacement from N examples gives
exactly tr(Σ)/B · (N − B)/(N − 1) (Σ the per-example gradient covariance): ∝ 1/B until B nears N, and 0 for the
full batch.

    python -m sweep.analysis.gradient_noise SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np

from sweep.analysis._common import Skip, Sweep, cli, fit_title, log_y, new_figure, no_minor_x, plot_function
from sweep.analysis._findings import best_row, config_stats, set_finding

DRAWS = 100  # minibatches per batch size (up to 20x more for the smallest: `minibatch_variance`)


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


def minibatch_variance(G, sizes, draws: int = DRAWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(measured, exact) E‖g_B − g‖² per batch size B, from per-example gradients G [N, P]: `draws` minibatches
    drawn without replacement per B; exact = tr(Σ)/B · (N − B)/(N − 1) with Σ the covariance (1/N)."""
    import torch

    n = G.shape[0]
    full = G.mean(0)
    tr = float(((G - full) ** 2).sum(1).mean())
    gen = torch.Generator().manual_seed(seed)
    measured, exact = [], []
    for b in sizes:
        b = int(min(b, n))
        # small batches are the noisy (heavy-tailed) ones and cheap to draw: more of them
        m = 1 if b >= n else max(draws, min(20 * draws, 20 * draws * 4 // b))
        acc = 0.0
        for _ in range(m):
            idx = torch.randperm(n, generator=gen)[:b]
            acc += float(((G[idx].mean(0) - full) ** 2).sum())
        measured.append(acc / m)
        exact.append(tr / b * (n - b) / (n - 1) if n > 1 else 0.0)
    return np.array(measured), np.array(exact)


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
    fig, axes = new_figure(ncols=1, width=8.0, height=5.0)
    ax = axes[0][0]
    lines = []
    act, task = cfg["model"]["activation"], data.task
    points = ((start, "at initialisation (seed 0)", "tab:blue"), (end, f"after training (run {rid})", "tab:orange"))
    for params, name, c in points:
        if params is None:
            continue
        G = per_example_grads(params, data.x_train, data.y_train, act, task)
        measured, exact = minibatch_variance(G, sizes)
        part = [b < n for b in sizes]
        bs = np.array(sizes, dtype=float)
        ax.plot(bs[part], measured[part], "o", color=c, label=f"{name}: measured (≥ {DRAWS} batches per B)")
        ax.plot(bs[part], exact[part], "-", color=c, alpha=0.7, label="  tr(Σ)/B · (N−B)/(N−1)")
        ax.plot(bs[part], exact[0] * bs[0] / bs[part], ":", color=c, alpha=0.8, label="  ∝ 1/B")
        lines.append((name, measured, exact))
    ax.set_xscale("log", base=2)
    shown = [b for b in sizes if b < n]
    ax.set_xticks(shown, [str(b) for b in shown])
    no_minor_x(ax)
    log_y(ax)
    ax.set_xlabel(f"batch size B (log2 scale; the full batch N = {n} has no noise)")
    ax.set_ylabel("E‖g_B − g‖²  (squared norm)")
    fit_title(ax, "variance of the minibatch gradient g_B around the full-batch gradient g", width_in=7.5)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
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
