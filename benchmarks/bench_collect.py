"""How fast `sweep.collect.load_runs` reads a big sweep: a synthetic store of N run folders in the real format.

    python benchmarks/bench_collect.py [--runs 10000] [--keep DIR] [--history] [--legacy]

Each run folder gets a config.json and config.yaml composed from conf/ exactly as `sweep run` resolves it (then
varied over optimizer, lr, seed, batch_size, schedule, init, hidden widths, as a grid would), a summary.json with
every field the engine writes, and a small history.parquet; plus a sweep.json listing the runs. --legacy leaves
out config.json, as in runs recorded before it existed (collect then parses config.yaml). The files are written
directly (no fsync) so that making the store is quick; reading them is what is timed, twice (the second read is
the usual case: the files are in the page cache).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweep.results import CONFIG_JSON, CONFIG_YAML  # noqa: E402


def base_config(out_dir: Path, name: str) -> dict:
    """A real resolved run config (what config.yaml holds), composed from conf/."""
    from hydra import compose, initialize_config_module

    from sweep.compose import resolved

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"out_dir={out_dir}", f"name={name}"])
    return resolved(cfg)


def history_blobs(n: int = 16) -> list[bytes]:
    """A few history.parquet files in the engine's format (rows every 10 steps, test metrics at epoch ends)."""
    blobs = []
    rng = np.random.default_rng(0)
    for _ in range(n):
        steps = np.arange(10, 231, 10)
        epoch_end = steps % 23 == 0
        loss = 2.3 * np.exp(-steps / 80) + 0.05 * rng.random(len(steps))
        df = pd.DataFrame(
            {
                "step": steps,
                "epoch": steps / 23,
                "lr": 0.1,
                "train_loss": loss,
                "grad_norm": rng.random(len(steps)),
                "test_loss": np.where(epoch_end, loss * 1.1, np.nan),
                "test_acc": np.where(epoch_end, 1 - loss / 3, np.nan),
            }
        )
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        blobs.append(buf.getvalue())
    return blobs


def make_store(root: Path, n: int, legacy: bool = False) -> Path:
    from sweep.config import run_id

    name = "bench-sweep"
    sweep_dir = root / name
    sweep_dir.mkdir(parents=True)
    base = base_config(root, name)
    choices = (
        ["sgd", "momentum", "adam", "rmsprop"],
        [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3],
        [32, 64, 128, "full"],
        ["constant", "cosine", "step"],
        ["lecun_normal", "zeros"],
        [[64, 64], [128], [32, 32, 32]],
    )
    hist = history_blobs()
    rnd = random.Random(0)
    runs = []
    seen: set[str] = set()
    i = 0
    while len(runs) < n:  # random grid points (a realistic mix of every swept key), no repeats
        opt, lr, bs, sched, init, hidden = (rnd.choice(c) for c in choices)
        seed = rnd.randrange(1000)
        i += 1
        cfg = json.loads(json.dumps(base))
        cfg.update(lr=lr, batch_size=bs, seed=seed)
        cfg["optimizer"]["name"] = opt
        if opt == "momentum":
            cfg["optimizer"]["momentum"] = 0.9
        cfg["schedule"]["name"] = sched
        cfg["init"]["name"] = init
        cfg["model"]["hidden"] = hidden
        ov = [
            f"optimizer={opt}",
            f"lr={lr}",
            f"batch_size={bs}",
            f"schedule={sched}",
            f"init={init}",
            f"model.hidden=[{','.join(map(str, hidden))}]",
            f"seed={seed}",
        ]
        cfg["wandb"]["tags"] = ov
        rid = run_id(cfg)
        if rid in seen:
            continue
        seen.add(rid)
        d = sweep_dir / rid
        d.mkdir()
        (d / CONFIG_YAML).write_text(yaml.safe_dump(cfg, sort_keys=False))
        if not legacy:
            (d / CONFIG_JSON).write_text(json.dumps(cfg, separators=(",", ":")) + "\n")  # as write_config does
        status = rnd.choice(["done"] * 8 + ["diverged", "running"])
        loss = rnd.random()
        summary = {
            "run_id": rid,
            "name": name,
            "status": status,
            "step": 230,
            "total_steps": 230,
            "epochs": 10,
            "steps_per_epoch": 23,
            "final_train_loss": loss,
            "final_test_loss": loss * 1.1,
            "final_test_acc": 1 - loss / 3,
            "best_test_loss": loss,
            "best_test_acc": 1 - loss / 4,
            "diverged_step": 57 if status == "diverged" else None,
            "diverged_loss": 1e4 if status == "diverged" else None,
            "wall_s": 12.5,
            "samples_per_s": 9000.0,
            "pack_size": 64,
            "device": "cpu",
            "slurm_job_id": None,
            "versions": {
                "git": {"commit": "0" * 40, "dirty": False},
                "host": "node1",
                "python": "3.11.7",
                "sweep": "0.1.0",
                "torch": "2.13.0",
            },
        }
        (d / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        (d / "history.parquet").write_bytes(hist[i % len(hist)])
        runs.append({"run_id": rid, "overrides": ov})
    record = {
        "name": name,
        "grid_key": "bench",
        "swept": ["batch_size", "init", "lr", "model.hidden", "optimizer", "schedule", "seed"],
        "argv": ["-m", "..."],
        "created": "2025-01-01T00:00:00",
        "runs": runs,
    }
    (sweep_dir / "sweep.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return sweep_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--keep", type=Path, help="make the store in this folder and keep it")
    p.add_argument("--history", action="store_true", help="also time load_history")
    p.add_argument("--legacy", action="store_true", help="config.yaml only (runs recorded before config.json)")
    a = p.parse_args()
    from sweep.collect import load_history, load_runs
    from sweep.results import config_from_text

    root = Path(tempfile.mkdtemp(prefix="bench_collect_")) if a.keep is None else a.keep
    try:
        t0 = time.perf_counter()
        sweep_dir = make_store(root, a.runs, legacy=a.legacy)
        print(f"made {a.runs} run folders in {time.perf_counter() - t0:.1f} s: {sweep_dir}")
        for label in ("first read", "second read"):
            t0 = time.perf_counter()
            df = load_runs(sweep_dir)
            dt = time.perf_counter() - t0
            print(
                f"load_runs ({label}): {len(df)} runs x {len(df.columns)} columns in {dt:.2f} s "
                f"= {len(df) / dt:,.0f} runs/s"
            )
        # what one run's config costs to parse, in each format
        per_run = {}
        for name in (CONFIG_JSON, CONFIG_YAML):
            texts = [t.read_text() for t in (sweep_dir / r / name for r in df["run_id"][:1000]) if t.exists()]
            if texts:
                t0 = time.perf_counter()
                for t in texts:
                    config_from_text(t, json_text=name == CONFIG_JSON)
                per_run[name] = (time.perf_counter() - t0) / len(texts)
        print("config parse: " + ", ".join(f"{k} {v * 1e3:.3f} ms/run" for k, v in per_run.items()))
        if a.history:
            t0 = time.perf_counter()
            h = load_history(sweep_dir, df)
            dt = time.perf_counter() - t0
            print(f"load_history: {len(h):,} rows of {h['run_id'].nunique()} runs in {dt:.2f} s")
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
