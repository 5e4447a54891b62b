"""Grid vs random vs TPE vs ASHA on one search space, each trained as packs by `sweep run -m`.

    python benchmarks/bench_search.py [--epochs 20] [--out benchmarks/results/bench_search.txt]

Space: optimizer in {sgd, momentum, rmsprop, adam} x lr log-uniform in [1e-4, 1], digits, a 64-unit MLP.
(a) a 64-point grid (16 log-spaced lrs per optimizer); (b) 64 random trials; (c) 64 TPE trials (asked 8 at a
time); (d) ASHA over 256 random trials asked 64 at a time, its rungs at 1, 3, 9, ... quarter epochs (validation every
quarter epoch: search.rungs_per_epoch=4); (d') the same with rungs at epoch ends. For each: the best
final validation loss (the selection metric; diverged and collapsed runs count as +inf), the model-epochs spent
(a pruned run counts the epochs it trained), and the wall time. One run of the script: ratios within it.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OPTIMIZERS = "sgd,momentum,rmsprop,adam"
COMMON = ["data=digits", "model.hidden=[64]", "batch_size=64", "wandb.mode=disabled", "log_every=20"]


def run(out: Path, name: str, *args: str) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "sweep.cli", "run", "-m", *args, *COMMON, f"out_dir={out}", f"name={name}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def measure(folder: Path, epochs: int) -> dict:
    from sweep.store import scan

    best, model_epochs, statuses = math.inf, 0.0, {}
    for rec in scan(folder).values():
        s = rec.summary
        if s is None:  # a corrupt summary is counted (no result); a run with none yet is not
            if rec.problem:
                statuses[rec.status] = statuses.get(rec.status, 0) + 1
            continue
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
        if s["status"] == "pruned":
            model_epochs += s["pruned_epoch"]
        else:  # a diverged run stopped at its step
            model_epochs += s["step"] / s["steps_per_epoch"]
        if s["status"] == "done" and s.get("final_val_loss") is not None:  # a pruned run did not finish
            best = min(best, s["final_val_loss"])
    return {"best_val_loss": best, "model_epochs": model_epochs, "runs": sum(statuses.values()), "statuses": statuses}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    e = f"epochs={args.epochs}"
    lrs = ",".join(f"{x:.3g}" for x in np.logspace(-4, 0, 16))
    space = [f"optimizer={OPTIMIZERS}", "lr=tag(log, interval(1e-4, 1))"]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases = {
            "(a) grid, 64 points": ["search=grid", f"optimizer={OPTIMIZERS}", f"lr={lrs}"],
            "(b) random, 64 trials": ["search=random", "search.trials=64", "search.batch=64", *space],
            "(c) tpe, 64 trials (8 per batch)": ["search=tpe", "search.trials=64", "search.batch=8", *space],
            "(d) asha over 256 random trials": [
                "search=random",
                "search.trials=256",
                "search.batch=64",
                "search.pruner=asha",
                "search.rungs_per_epoch=4",
                *space,
            ],
            "(d') the same, rungs at epoch ends only": [
                "search=random",
                "search.trials=256",
                "search.batch=64",
                "search.pruner=asha",
                *space,
            ],
        }
        for i, (label, case) in enumerate(cases.items()):
            wall = run(out, f"case{i}", *case, e)
            rows[label] = dict(measure(out / f"case{i}", args.epochs), wall_s=wall)
    grid = rows["(a) grid, 64 points"]
    lines = [f"bench_search: digits, 64-unit MLP, {args.epochs} epochs; 4 optimizers x log-lr in [1e-4, 1]"]
    lines.append(
        f"{'case':36s} {'best val loss':>13s} {'model-epochs':>12s} {'wall s':>7s}  vs (a): loss, epochs, wall"
    )
    for label, r in rows.items():
        lines.append(
            f"{label:36s} {r['best_val_loss']:13.4f} {r['model_epochs']:12.0f} {r['wall_s']:7.1f}  "
            f"{r['best_val_loss'] / grid['best_val_loss']:.3f}x, {r['model_epochs'] / grid['model_epochs']:.3f}x, "
            f"{r['wall_s'] / grid['wall_s']:.2f}x   {r['statuses']}"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
