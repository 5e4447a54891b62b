"""The gradient-noise plot of `sweep report`, as it was (a Python loop of minibatches, each summing B rows of the
per-example gradients) and as it is (indices drawn in bulk, read from D Dᵀ, until the SE is 1 % of the estimate;
B = 1 exact), on one sweep's data and model, in one run of the script: the ratio of the two.

    python benchmarks/bench_report.py [--sweep SWEEP]

Without --sweep it trains a 2-run sweep with the batch_size study's data and model (digits, 64-64 MLP): the
plot's cost depends on those alone, not on how many runs the sweep has. Both ways measure the same per-example
gradients (at initialisation and after training); the script prints seconds and measured / exact per B.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def legacy_variance(G, sizes, draws: int = 100, seed: int = 0) -> np.ndarray:
    """The plot's estimator before: one randperm and one B×P gather per minibatch, up to 20×draws per B."""
    n = G.shape[0]
    full = G.mean(0)
    gen = torch.Generator().manual_seed(seed)
    measured = []
    for b in sizes:
        b = int(min(b, n))
        m = 1 if b >= n else max(draws, min(20 * draws, 20 * draws * 4 // b))
        acc = 0.0
        for _ in range(m):
            idx = torch.randperm(n, generator=gen)[:b]
            acc += float(((G[idx].mean(0) - full) ** 2).sum())
        measured.append(acc / m)
    return np.array(measured)


def make_sweep(root: Path) -> Path:
    grid = ["batch_size=16,full", "lr=0.3", "seed=0", "epochs=10", "wandb.mode=disabled", "name=bs"]
    cmd = [sys.executable, "-m", "sweep.cli", "run", "-m", *grid, f"out_dir={root}"]
    subprocess.run(cmd, check=True, capture_output=True)
    return root / "bs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", type=Path, help="a sweep with batch_size swept (default: train a small one)")
    a = p.parse_args()
    from sweep import analysis
    from sweep.analysis import gradient_noise as gn

    with tempfile.TemporaryDirectory() as tmp:
        sw = analysis.Sweep(a.sweep or make_sweep(Path(tmp)))
        print(f"sweep {sw.dir} ({len(sw.runs)} runs), torch threads {torch.get_num_threads()}")
        t0 = time.perf_counter()
        fig = analysis.plot_gradient_noise(sw)
        new_s = time.perf_counter() - t0
        print(f"now:    plot_gradient_noise {new_s:.1f} s")
        rid = str(sw.runs.loc[sw.runs["status"] == "done", "run_id"].iloc[0])
        cfg, data, start, end = gn._setup(sw, rid)
        n = data.x_train.shape[0]
        sizes = [1, 4, 16, 64, 256, 1024, n] if n > 1024 else [1, 4, 16, 64, n]
        old_s = 0.0  # the plot before: both points' gradients and the old loop
        for params in (start, end):
            t1 = time.perf_counter()
            G = gn.per_example_grads(params, data.x_train, data.y_train, cfg["model"]["activation"], data.task)
            old_s += time.perf_counter() - t1
            t1 = time.perf_counter()
            old = legacy_variance(G, sizes)
            old_loop = time.perf_counter() - t1
            old_s += old_loop
            t1 = time.perf_counter()
            noise = gn.minibatch_variance(G, sizes)
            new_loop = time.perf_counter() - t1
            print(f"  B = {sizes[:-1]} (N = {n})")
            print(f"  before: measured/exact {np.round(old[:-1] / noise.exact[:-1], 3)}  ({old_loop:.1f} s)")
            print(f"  now:    measured/exact {np.round(noise.measured[:-1] / noise.exact[:-1], 3)}  ({new_loop:.1f} s)")
            print(
                f"          relative SE    {np.round(noise.se[:-1] / noise.measured[:-1], 3)}, draws {noise.draws[:-1]}"
            )
        print(f"before: the same plot ~{old_s:.1f} s (gradients and the old loop, both points; no drawing)")
        print(f"ratio before / now: {old_s / new_s:.1f}x")
        del fig


if __name__ == "__main__":
    main()
