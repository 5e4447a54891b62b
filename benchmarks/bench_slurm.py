"""SLURM backend benchmark on the one-node dev cluster.

How to run (from the repo root, venv active, cluster up: `SLURM_CPUS=4 SLURM_MAX_ARRAY=8 slurm/dev-cluster-up`):

    python benchmarks/bench_slurm.py                 # everything (~8 min on a 2-core machine)
    python benchmarks/bench_slurm.py --skip-cli      # (a) without the 1,000-config CLI run (~4 min less)
    python benchmarks/bench_slurm.py --only a        # just the queueing figures

(a) Queueing a 1,000-config grid (lr x seed), jobs cancelled right after they are queued:
    - `sweep run -m ... cluster=dev` end to end (Hydra composes and validates every grid point first), with the
      share spent inside sweep.launch.slurm.submit (snapshot, packing, sbatch calls) read from its output;
    - submit() alone for pack=1 (1,000 array tasks: with MaxArraySize=8 that is 125 arrays, the chunking worst
      case) and pack=16 (63 packs: 8 arrays).
(b) Total wall time of a 64-run grid (digits, 64-128-128-10 MLP, 5 epochs; lr x seed) from `sweep run -m` to the
    last run done: pack=1 (64 array tasks) vs pack=16 (4 tasks) vs pack=64 (1 task), and the ratios.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "run", "-m", *args], cwd=REPO, capture_output=True, text=True
    )
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"sweep run failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt, p.stdout


def sweep_dir_of(stdout: str) -> Path:
    return Path(re.search(r"^sweep: \d+ runs -> (.+)$", stdout, flags=re.M).group(1))


def array_ids(sweep_dir: Path) -> list[str]:
    rec = json.loads((sweep_dir / "sweep.json").read_text())
    return [j for sub in rec.get("slurm", []) for j in sub["job_ids"]]


def cancel(ids: list[str]) -> None:
    for i in range(0, len(ids), 200):
        subprocess.run(["scancel", *ids[i : i + 200]], check=False)


def base_cfg(out_dir: Path, *overrides: str) -> dict:
    from hydra import compose, initialize_config_module

    from sweep.compose import resolved

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"out_dir={out_dir}", *overrides])
    return resolved(cfg)


def bench_queue(tmp: Path, skip_cli: bool) -> None:
    from sweep.launch.slurm import max_array_size, submit

    print(f"(a) queueing a 1,000-config grid  [MaxArraySize={max_array_size()}]")
    lrs = "range(0.001,0.1005,0.001)"  # 100 values (hydra float range)
    if not skip_cli:
        out = tmp / "cli"
        dt, stdout = cli(
            f"lr={lrs}", "seed=range(10)", "epochs=1", "wandb.mode=disabled", "pack=1", "cluster=dev", f"out_dir={out}"
        )
        d = sweep_dir_of(stdout)
        ids = array_ids(d)
        cancel(ids)
        inside = float(re.search(r"in ([\d.]+) s", stdout).group(1))
        n = len(json.loads((d / "sweep.json").read_text())["runs"])
        print(
            f"    sweep run -m, {n} configs, pack=1: {dt:6.1f} s to all {len(ids)} arrays queued "
            f"({inside:.1f} s in submit(), {dt - inside:.1f} s Hydra start-up + composing/validating the grid)"
        )
    base = base_cfg(tmp / "direct", "epochs=1", "wandb.mode=disabled", "cluster=dev")
    for pack in (1, 16):
        cfgs = []
        for i in range(100):
            for s in range(10):
                c = copy.deepcopy(base)
                c.update(lr=0.001 * (i + 1), seed=s, pack=pack, name=f"direct-pack{pack}")
                cfgs.append(c)
        t0 = time.perf_counter()
        submit(cfgs, tmp / "direct" / f"direct-pack{pack}")
        dt = time.perf_counter() - t0
        ids = array_ids(tmp / "direct" / f"direct-pack{pack}")
        cancel(ids)
        print(f"    submit() alone, 1000 configs, pack={pack:<2}: {dt:6.2f} s, {len(ids)} array(s)")


def bench_grid(tmp: Path) -> None:
    from sweep.launch.slurm import wait_for_jobs
    from sweep.store import scan

    print("(b) a 64-run grid on the dev cluster (digits 64-128-128-10, 5 epochs, lr x seed), submit -> all done")
    grid = [
        "lr=0.01,0.02,0.03,0.05,0.07,0.1,0.15,0.2",
        "seed=range(8)",
        "epochs=5",
        "model.hidden=[128,128]",
        "wandb.mode=disabled",
        "cluster=dev",
    ]
    times = {}
    for pack in (1, 16, 64):
        out = tmp / f"grid-pack{pack}"
        t0 = time.perf_counter()
        _, stdout = cli(*grid, f"pack={pack}", f"out_dir={out}")
        d = sweep_dir_of(stdout)
        ids = array_ids(d)
        if not wait_for_jobs(ids, timeout_s=1800, poll_s=0.5):
            cancel(ids)
            raise SystemExit(f"pack={pack}: jobs {ids} not finished after 30 min")
        times[pack] = time.perf_counter() - t0
        statuses = [r.status for r in scan(d).values() if r.status is not None]
        tasks = sum(1 for _ in (d / "submitit").glob("*_submitted.pkl"))
        print(
            f"    pack={pack:<2}: {times[pack]:6.1f} s  ({tasks} array task(s), "
            f"{statuses.count('done')}/{len(statuses)} runs done)"
        )
    for pack in (16, 64):
        print(f"    ratio pack=1 / pack={pack}: {times[1] / times[pack]:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("a", "b"))
    ap.add_argument("--skip-cli", action="store_true", help="(a): skip the 1,000-config `sweep run -m` timing")
    ap.add_argument("--keep", action="store_true", help="keep the output folders")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_slurm_"))
    try:
        if args.only in (None, "a"):
            bench_queue(tmp, args.skip_cli)
        if args.only in (None, "b"):
            bench_grid(tmp)
    finally:
        if args.keep:
            print(f"outputs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
