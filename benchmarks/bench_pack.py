"""The batched engine: a 64-config grid as (a) 64 `sweep run` processes, (b) 64 runs one after another in one
process, (c) one pack of 64 trained together. Also the 4-optimizer grid (4 packs of 16), and FLOP/s.

    python benchmarks/bench_pack.py                 # full: (a) runs all 64 processes (~4-5 min on 2 cores)
    python benchmarks/bench_pack.py --procs 8       # (a) measured on 8 processes and scaled to 64 (says so)

Grid: digits, MLP 64-64-64-10, batch 64, 20 epochs (460 steps), momentum SGD, 16 lrs x 4 seeds.
Each line prints wall times and ratios measured in this one run, for wandb disabled and offline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_cfg, matmul_flops, params_of

from sweep.data import cached_splits as dataset
from sweep.runner import train_runs

LRS = [f"{x:.4g}" for x in [0.005 * 1.4**i for i in range(16)]]
SEEDS = range(4)
COMMON = ["data=digits", "model.hidden=[64,64]", "batch_size=64", "epochs=20", "optimizer=momentum"]


def grid(out: Path, wandb: str) -> list[dict]:
    return [
        make_cfg(out, *COMMON, f"lr={lr}", f"seed={s}", f"wandb.mode={wandb}", "name=bench")
        for lr in LRS
        for s in SEEDS
    ]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def separate_processes(out: Path, wandb: str, n: int) -> float:
    """Wall time of n fresh `sweep run` processes, scaled to 64 when n < 64."""
    env = dict(os.environ, WANDB_SILENT="true")
    t0 = time.perf_counter()
    for _i, (lr, s) in enumerate([(lr, s) for lr in LRS for s in SEEDS][:n]):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sweep.cli",
                "run",
                *COMMON,
                f"lr={lr}",
                f"seed={s}",
                f"wandb.mode={wandb}",
                f"out_dir={out}",
                "name=bench",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    return (time.perf_counter() - t0) * 64 / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=64, help="processes to measure for (a); scaled to 64")
    ap.add_argument("--modes", default="disabled,offline", help="wandb modes to measure")
    args = ap.parse_args()
    peak = matmul_flops()
    print(f"matmul roofline: {peak / 1e9:.0f} GFLOP/s ({__import__('torch').get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset(make_cfg(tmp, *COMMON)["data"])  # load once, as every timed variant can
        for mode in args.modes.split(","):
            a = separate_processes(tmp / f"a-{mode}", mode, args.procs)
            b = timed(lambda: train_runs(grid(tmp / f"b-{mode}", mode), pack=1, progress=False))
            cfgs = grid(tmp / f"c-{mode}", mode)
            c = timed(lambda: train_runs(cfgs, pack=64, progress=False))
            four = [
                make_cfg(
                    tmp / f"d-{mode}",
                    "data=digits",
                    "model.hidden=[64,64]",
                    "batch_size=64",
                    "epochs=20",
                    f"optimizer={o}",
                    f"lr={lr}",
                    f"seed={s}",
                    f"wandb.mode={mode}",
                )
                for o, lrs in (
                    ("sgd", (0.05, 0.1, 0.2, 0.4)),
                    ("momentum", (0.01, 0.02, 0.05, 0.1)),
                    ("adam", (1e-3, 3e-3, 1e-2, 3e-2)),
                    ("rmsprop", (1e-3, 3e-3, 1e-2, 3e-2)),
                )
                for lr in lrs
                for s in SEEDS
            ]
            d = timed(lambda: train_runs(four, pack=64, progress=False))
            samples = 64 * 20 * dataset(make_cfg(tmp, *COMMON)["data"]).x_train.shape[0]
            flops = 6 * params_of([64, 64, 64, 10]) * samples / c
            scaled = "" if args.procs >= 64 else f" (measured on {args.procs}, scaled)"
            print(f"\nwandb={mode}")
            print(f"  (a) 64 separate processes{scaled}: {a:7.1f} s")
            print(f"  (b) 64 runs sequentially, one process: {b:7.1f} s")
            print(
                f"  (c) one batched pack of 64:            {c:7.1f} s   (a)/(c) = {a / c:5.1f}x"
                f"   (b)/(c) = {b / c:5.1f}x"
            )
            print(f"  (d) sgd/momentum/adam/rmsprop grid, 4 packs of 16: {d:7.1f} s   (a)/(d) = {a / d:5.1f}x")
            print(f"  pack of 64: {flops / 1e9:.2f} GFLOP/s achieved = {flops / peak:.3f} of matmul roofline")


if __name__ == "__main__":
    main()
