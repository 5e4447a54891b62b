"""The store at pack sizes where packs pay off: where a pack's wall time goes, inodes per run, and `collect`.

    python benchmarks/bench_store.py                       # K = 64, 512, 4096; collect of 100,000 runs
    python benchmarks/bench_store.py --ks 64 512 --collect-runs 10000 --out benchmarks/results/bench_store.txt

For each K: one grid of K digits runs (MLP 64-64, batch 64, momentum SGD, 21 steps an epoch) in one pack,
trained by `train_runs` in this process after a warm-up (data loaded, imports done), for 1 and 3 epochs. The
wall time is split into optimizer steps (`Trainer._advance`), evaluations (`Trainer._evaluate`), store writes
(`PackWriter.write_*`) and the rest (claims, configs, summaries, the loop's own host work). wandb: `disabled`
and `offline` (the default: mirrored later by `sweep sync`, so training does no wandb work at all), and once
`online` against a server that never answers (the mirror follows in a process of its own). Goal of the store:
everything but training costs at most one epoch, T(1 epoch) / T(3 epochs) <= 0.5.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_cfg

from sweep import store
from sweep.engine import Trainer
from sweep.runner import train_runs

PARTS = {"steps": (Trainer, "_advance"), "evaluations": (Trainer, "_evaluate")}
WRITES = ("write_checkpoint", "write_histories", "write_summaries")


@contextmanager
def timed_parts():
    """Accumulate seconds spent in the engine's parts while the block runs."""
    spent = {"steps": 0.0, "evaluations": 0.0, "store writes": 0.0}
    saved = []

    def wrap(owner, name, key):
        fn = getattr(owner, name)
        saved.append((owner, name, fn))

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[key] += time.perf_counter() - t0

        setattr(owner, name, timed)

    for key, (owner, name) in PARTS.items():
        wrap(owner, name, key)
    for name in WRITES:
        wrap(store.PackWriter, name, "store writes")
    try:
        yield spent
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def grid(out: Path, k: int, epochs: int, wandb: str) -> list[dict]:
    """K resolved configs differing in lr and seed (composed once: Hydra takes ~50 ms a config)."""
    base = make_cfg(
        out, "data=digits", "model.hidden=[64,64]", "batch_size=64", f"epochs={epochs}", "optimizer=momentum",
        f"wandb.mode={wandb}", "name=bench",
    )  # fmt: skip
    return [copy.deepcopy(base) | {"lr": float(f"{0.001 * (1 + i % 64):.4g}"), "seed": i // 64} for i in range(k)]


def one(k: int, epochs: int, wandb: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        cfgs = grid(out, k, epochs, wandb)
        for c in cfgs:
            c["wandb"]["init_timeout_s"] = 3.0
        with timed_parts() as spent:
            t0 = time.perf_counter()
            train_runs(cfgs, pack=k, progress=False)
            wall = time.perf_counter() - t0
        if wandb == "online":  # its mirror follows this process, which lives on: end it before the next one
            import subprocess

            subprocess.run(["pkill", "-f", f"sweep.mirror {out}"], check=False)
        inodes = sum(len(d) + len(f) for _, d, f in os.walk(out / "bench")) + 1
        rest = wall - sum(spent.values())
        return {"k": k, "epochs": epochs, "wandb": wandb, "wall_s": wall, **spent, "rest": rest, "inodes": inodes}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def collect_time(n_runs: int, pack: int = 1000) -> dict:
    """`load_runs` of a sweep of n_runs in packs of `pack`, made by copying one trained pack's records."""
    from sweep.collect import load_runs

    out = Path(tempfile.mkdtemp(prefix="bench_collect_"))
    try:
        cfgs = grid(out, 64, 1, "disabled")
        train_runs(cfgs, pack=64, progress=False)
        (src,) = (out / "bench" / "packs").iterdir()
        base_s = list(json.loads((src / "summary.json").read_text()).values())
        base_c = list(json.loads((src / "runs.json").read_text()).values())
        for p in range(n_runs // pack):
            ids = [f"{p:06x}{i:06x}" for i in range(pack)]
            w = store.PackWriter(out / "big", {rid: dict(base_c[i % 64], seed=i) for i, rid in enumerate(ids)})
            w.start({})
            w.write_summaries({rid: dict(base_s[i % 64], run_id=rid) for i, rid in enumerate(ids)})
        t0 = time.perf_counter()
        df = load_runs(out / "big")
        wall = time.perf_counter() - t0
        assert len(df) == n_runs, len(df)
        return {"runs": n_runs, "collect_s": wall}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ks", type=int, nargs="+", default=[64, 512, 4096])
    p.add_argument("--collect-runs", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=None, help="also write the lines to this file")
    a = p.parse_args()
    lines = []

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    one(1, 1, "disabled")  # warm-up: imports, the dataset's cache
    say("K     wandb     epochs  wall s   steps  evals  writes  rest   inodes/run   T(1)/T(3)")
    for k in a.ks:
        for wandb in ("disabled", "offline"):
            r1, r3 = one(k, 1, wandb), one(k, 3, wandb)
            for r in (r1, r3):
                say(
                    f"{k:<5d} {wandb:<9s} {r['epochs']:>6d} {r['wall_s']:7.2f} {r['steps']:7.2f} "
                    f"{r['evaluations']:6.2f} {r['store writes']:7.2f} {r['rest']:6.2f} "
                    f"{r['inodes'] / k:10.3f}" + (f"   {r1['wall_s'] / r3['wall_s']:.2f}" if r is r3 else "")
                )
    # online, against a server that accepts connections and never answers: the mirror is a process of its own
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    os.environ.update(WANDB_BASE_URL=f"http://127.0.0.1:{silent.getsockname()[1]}", WANDB_API_KEY="x" * 40)
    k = 512 if 512 in a.ks else a.ks[0]
    ratios = []
    for _ in range(5):  # alternated: this machine is noisy
        off, on = one(k, 1, "disabled"), one(k, 1, "online")
        ratios.append(on["wall_s"] / off["wall_s"])
    say(
        f"K={k}, 1 epoch, wandb online with a server that never answers vs disabled, 5 rounds alternated: "
        + ", ".join(f"{r:.2f}x" for r in ratios)
        + f" (median {sorted(ratios)[2]:.2f}x)"
    )
    if a.collect_runs:
        c = collect_time(a.collect_runs)
        say(f"collect (load_runs) of {c['runs']:,} runs in packs of 1,000: {c['collect_s']:.2f} s")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
