"""The batched engine: a 64-config grid as (a) 64 `sweep run` processes, (b) 64 runs one after another in one
process, (c) one pack of 64 trained together. Also the 4-optimizer grid (4 packs of 16), and FLOP/s.

    python benchmarks/bench_pack.py                 # full: (a) runs all 64 processes (~4-5 min on 2 cores)
    python benchmarks/bench_pack.py --procs 8       # (a) measured on 8 processes and scaled to 64 (says so)
    python benchmarks/bench_pack.py --steps-only    # only the step of a pack of 64, three ways (below)
    python benchmarks/bench_pack.py --malloc        # the plain step with glibc's defaults vs sweep's tuning

The step of the pack of 64, as a fraction of the machine's matmul roofline (6 x params x samples FLOPs):
autograd through the forward pass (how the engine stepped before), the written-out backward
(sweep.model.losses_and_grads, the plain step now) and the plain step compiled (compile=true). Each is timed
in interleaved rounds and the median round is reported: this machine is noisy.

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
import statistics
from functools import partial

import torch
from common import make_cfg, matmul_flops, params_of

from sweep.data import cached_splits as dataset
from sweep.engine import Run, Trainer
from sweep.runner import train_runs
from sweep.sampling import epoch_order

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


def autograd_step(trainer: Trainer, idx: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
    """The pack's step with gradients by autograd through `forward` (the engine's step before the backward was
    written out), the same optimizer update after it."""
    st, b = trainer.state, trainer._batch(idx)
    params = [p.detach().requires_grad_(True) for p in st.params]
    loss = b.losses(params)
    grads = torch.autograd.grad(loss.sum(), params)
    with torch.no_grad():
        for p, g, s in zip(st.params, grads, st.updater.states):
            st.updater.update(p, g, s, lr=lr, **st.updater.kwargs)
    return loss.detach()


def grid_pack(cfgs: list[dict]) -> tuple[Trainer, list[torch.Tensor], torch.Tensor]:
    """The grid's pack of 64 as a Trainer, its first epoch's full batches (idx [64, B] each) and an lr vector."""
    t = Trainer([Run(cfg=c, run_id=f"r{i}") for i, c in enumerate(cfgs)], 0, [None] * len(cfgs))
    order = epoch_order(cfgs[0]["sampling"], t.data.x_train.shape[0], [c["seed"] for c in cfgs], 0, t.device)
    idx = [order[:, j * t.batch : (j + 1) * t.batch] for j in range(t.steps_per_epoch - 1)]
    return t, idx, torch.full((len(cfgs),), 0.01, dtype=t.dtype)


def step_bench(tmp: Path, peak: float, rounds: int = 7, steps: int = 40) -> dict[str, float]:
    """ms per step of a pack of 64 (the grid's configs): autograd, written out, compiled; median of rounds."""
    cfgs = grid(tmp / "steps", "disabled")
    trainers = {}
    for name in ("autograd", "written out", "compiled"):  # the same batches for each
        trainers[name], idx, lr = grid_pack(cfgs)
    t = trainers["written out"]
    compiled = torch.compile(partial(trainers["compiled"]._step, lr_host=None, want_norm=False), fullgraph=True)
    steps_of = {
        "autograd": partial(autograd_step, trainers["autograd"]),
        "written out": lambda i, lr: trainers["written out"]._step(i, lr, None, want_norm=False),
        "compiled": compiled,
    }
    for name, step in steps_of.items():  # warm up (the compiled one compiles here)
        t0 = time.perf_counter()
        for i in range(3):
            step(idx[i], lr)
        if name == "compiled":
            print(f"  compiling the step took {time.perf_counter() - t0:.1f} s")
    times: dict[str, list[float]] = {n: [] for n in steps_of}
    for _ in range(rounds):
        for name, step in steps_of.items():
            t0 = time.perf_counter()
            for i in range(steps):
                step(idx[i % len(idx)], lr)
            times[name].append((time.perf_counter() - t0) / steps)
    flops = 6 * params_of([64, 64, 64, 10]) * t.batch * len(cfgs)
    out = {}
    for name, ts in times.items():
        ms = 1e3 * statistics.median(ts)
        out[name] = ms
        rate = flops * 1e3 / ms
        print(f"  {name:12s} {ms:6.2f} ms/step  {rate / 1e9:6.1f} GFLOP/s = {rate / peak:.3f} of roofline")
    print(
        f"  written out / autograd: {out['autograd'] / out['written out']:.2f}x faster; "
        f"compiled / written out: {out['written out'] / out['compiled']:.2f}x faster"
    )
    return out


def one_step_ms(tmp: Path, glibc_defaults: bool) -> float:
    """Median ms of the plain step of the pack of 64, in this process (`--step-ms`)."""
    if glibc_defaults:
        import sweep.engine

        sweep.engine.keep_freed_memory = lambda: None  # what the trainer calls on the CPU: skipped
    t, idx, lr = grid_pack(grid(tmp / "one", "disabled"))
    rounds = []
    for r in range(8):
        t0 = time.perf_counter()
        for i in range(40):
            t._step(idx[i % len(idx)], lr, None, want_norm=False)
        if r:  # the first round warms up
            rounds.append((time.perf_counter() - t0) / 40)
    return 1e3 * statistics.median(rounds)


def malloc_ab(pairs: int = 8) -> None:
    """The plain step in fresh processes, alternately with glibc's defaults and with keep_freed_memory()."""
    ms: dict[str, list[float]] = {"glibc defaults": [], "keep_freed_memory": []}
    for _ in range(pairs):
        for name in ms:
            flag = ["--glibc-defaults"] if name == "glibc defaults" else []
            out = subprocess.run(
                [sys.executable, __file__, "--step-ms", *flag], check=True, capture_output=True, text=True
            )
            ms[name].append(float(out.stdout.strip().splitlines()[-1]))
    for name, v in ms.items():
        print(f"  {name:18s} median {statistics.median(v):5.2f} ms/step over {len(v)} processes: {v}")
    ratio = statistics.median(ms["glibc defaults"]) / statistics.median(ms["keep_freed_memory"])
    print(f"  keep_freed_memory: {ratio:.2f}x faster")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=64, help="processes to measure for (a); scaled to 64")
    ap.add_argument("--modes", default="disabled,offline", help="wandb modes to measure")
    ap.add_argument("--steps-only", action="store_true", help="only the step of a pack of 64, three ways")
    ap.add_argument("--malloc", action="store_true", help="the step with glibc's defaults vs sweep's tuning")
    ap.add_argument("--step-ms", action="store_true", help=argparse.SUPPRESS)  # one process of --malloc
    ap.add_argument("--glibc-defaults", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step_ms:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{one_step_ms(Path(tmp), args.glibc_defaults):.3f}")
        return
    if args.malloc:
        malloc_ab()
        return
    peak = matmul_flops()
    print(f"matmul roofline: {peak / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset(make_cfg(tmp, *COMMON)["data"])  # load once, as every timed variant can
        print("\nthe step of a pack of 64 (median of interleaved rounds)")
        step_bench(tmp, peak)
        if args.steps_only:
            return
        for mode in args.modes.split(","):
            a = separate_processes(tmp / f"a-{mode}", mode, args.procs)
            b = timed(lambda: train_runs(grid(tmp / f"b-{mode}", mode), pack=1, progress=False))
            cfgs = grid(tmp / f"c-{mode}", mode)
            c = timed(lambda: train_runs(cfgs, pack=64, progress=False))
            compiled = [dict(cfg, compile=True) for cfg in grid(tmp / f"cc-{mode}", mode)]
            cc = timed(lambda: train_runs(compiled, pack=64, progress=False))
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
            flops = 6 * params_of([64, 64, 64, 10]) * samples
            scaled = "" if args.procs >= 64 else f" (measured on {args.procs}, scaled)"
            print(f"\nwandb={mode}")
            print(f"  (a) 64 separate processes{scaled}: {a:7.1f} s")
            print(f"  (b) 64 runs sequentially, one process: {b:7.1f} s")
            print(
                f"  (c) one batched pack of 64:            {c:7.1f} s   (a)/(c) = {a / c:5.1f}x"
                f"   (b)/(c) = {b / c:5.1f}x"
            )
            print(f"  (d) sgd/momentum/adam/rmsprop grid, 4 packs of 16: {d:7.1f} s   (a)/(d) = {a / d:5.1f}x")
            print(f"  (c') the same pack, compile=true:       {cc:7.1f} s   (c)/(c') = {c / cc:5.2f}x (with compiling)")
            print(
                f"  pack of 64 end to end (every run's results written): {flops / c / 1e9:.1f} GFLOP/s = "
                f"{flops / c / peak:.3f} of matmul roofline; compile=true {flops / cc / peak:.3f}"
            )


if __name__ == "__main__":
    main()
