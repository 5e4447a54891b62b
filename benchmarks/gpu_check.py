"""All GPU verification in one call: the `gpu` tests, then the benchmarks; one JSON and a text table into --out.

    python benchmarks/gpu_check.py --device cuda --out OUT      (on the lent GPU machine: `make gpu-check`)
    python benchmarks/gpu_check.py --device cpu --out OUT       (here and in CI, smaller sizes: it cannot rot)

What it measures (every ratio from this one run, on the card it names):
  tests       pytest -m gpu (a diverging model in a CUDA pack, impl=torch, resume bit-identity, pack=auto)
  pack        packs of K digits MLPs (64-64-64-10, batch 64): seconds per step and model-steps/s, the step loop
              alone (synchronised) and train_runs end to end (results written for every run)
  single      784-512-512-10 at batch 1024: sweep's trainer vs the textbook DataLoader loop, samples/s
  optimizers  momentum, adam, rmsprop, adagrad at one K: plain vs captured step (Adam's family captures now)
  compile     one K, momentum: the plain step, our CUDA graph, torch.compile (default and reduce-overhead
              modes) and the compiled step inside our CUDA graph; compile seconds; which wins
  grid        64 configs: one pack of 64 vs separate `sweep run` processes (measured on --procs, scaled)
  auto        pack=auto's K for a small and a large model on this device
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_train import textbook  # noqa: E402
from common import fake_mnist, make_cfg  # noqa: E402

from sweep.data import cached_splits as dataset  # noqa: E402
from sweep.engine import Run, Trainer  # noqa: E402
from sweep.packing import auto_pack_size  # noqa: E402
from sweep.runner import train_runs  # noqa: E402

SIZES = {
    "cuda": dict(ks=[1, 16, 256, 1024, 4096], steps=200, procs=4, single_epochs=3, n_train=60000, k_one=1024),
    "cpu": dict(ks=[1, 16, 64], steps=40, procs=2, single_epochs=1, n_train=4096, k_one=16),
}
DIGITS = ["data=digits", "model.hidden=[64,64]", "batch_size=64", "optimizer=momentum", "wandb.mode=disabled"]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_tests(device: str, out: Path) -> dict:
    """pytest -m gpu (on a CPU they skip, and the device-rule tests that run anywhere run instead)."""
    marker = "gpu" if device == "cuda" else "gpu or not gpu"
    files = [str(REPO / "tests" / "test_engine_device.py")]
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *files,
        "-m",
        marker,
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(REPO),
        "-c",
        str(REPO / "pyproject.toml"),
        f"--junitxml={out / 'gpu_tests.xml'}",
    ]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir())
    tail = (p.stdout + p.stderr).strip().splitlines()[-15:]
    print("\n".join(tail), flush=True)
    return {"returncode": p.returncode, "summary": tail[-1] if tail else "", "seconds": time.perf_counter() - t0}


def seconds_per_step(step, idx, lr, lr_host, device: str) -> float:
    """Mean synchronised time of step(idx[i], ...) over len(idx) steps, grad norms every 10th (a sync step)."""
    sync(device)
    t0 = time.perf_counter()
    for i in range(len(idx)):
        step(idx[i], lr, lr_host, want_norm=(i + 1) % 10 == 0)
    sync(device)
    return (time.perf_counter() - t0) / len(idx)


def _trainer(
    device: str, k: int, tmp: Path, *overrides: str, steps: int = 40
) -> tuple[Trainer, torch.Tensor, torch.Tensor, np.ndarray]:
    """A pack of k digits MLPs (lrs 0.01 + 1e-5 i, one epoch) and `steps` random full batches for it
    (idx [steps, k, B]), its lr on the device and on the host."""
    chosen = {o.split("=")[0] for o in overrides}
    digits = [o for o in DIGITS if o.split("=")[0] not in chosen]
    base = make_cfg(tmp, *digits, f"device={device}", "epochs=1", "seed=0", *overrides)
    cfgs = [dict(copy.deepcopy(base), lr=0.01 + 1e-5 * i) for i in range(k)]  # composing 4096 is slow
    runs = [Run(cfg=c, run_id=f"r{i}") for i, c in enumerate(cfgs)]
    trainer = Trainer(runs, 0, [None] * k, progress=False)
    n = trainer.data.x_train.shape[0]
    idx = torch.randint(n, (steps, k, trainer.batch), generator=torch.Generator().manual_seed(0))
    lr = torch.full((k,), 0.01, dtype=trainer.dtype, device=trainer.device)
    return trainer, idx.to(trainer.device), lr, np.full(k, 0.01)


def pack_bench(device: str, ks: list[int], steps: int, tmp: Path) -> list[dict]:
    """Per K: the synchronised step loop alone, and train_runs end to end for one epoch-sized run."""
    rows = []
    for k in ks:
        trainer, idx, lr, lr_host = _trainer(device, k, tmp / f"k{k}", steps=steps)
        cfgs = [r.cfg for r in trainer.state.runs]
        for i in range(5):
            trainer._step(idx[i], lr, lr_host, want_norm=False)
        step_s = seconds_per_step(trainer._step, idx, lr, lr_host, device)
        try:
            trainer._advance(idx[0], lr, lr_host, want_norm=False)  # captures the CUDA graph (where it applies)
            fast_s = seconds_per_step(trainer._advance, idx, lr, lr_host, device)
        except Exception as e:  # keep the other figures; the failure is in the JSON and the log
            print(f"captured step failed at K={k}: {type(e).__name__}: {e}", flush=True)
            fast_s, trainer.cuda_graph, trainer._graphs = step_s, False, {}
        t0 = time.perf_counter()
        train_runs(cfgs, pack=k, progress=False)
        wall = time.perf_counter() - t0
        rows.append(
            {
                "k": k,
                "step_ms": 1e3 * step_s,
                "model_steps_per_s": k / step_s,
                "graph_step_ms": 1e3 * fast_s,
                "graph_model_steps_per_s": k / fast_s,
                "graph_speedup": step_s / fast_s,
                "captured": bool(trainer._graphs),
                "train_runs_s": wall,
                "steps_per_run": trainer.total,
            }
        )
        print(
            f"pack K={k:5d}: plain {1e3 * step_s:7.3f} ms/step, captured {1e3 * fast_s:7.3f} ms/step "
            f"({step_s / fast_s:4.1f}x, graph={bool(trainer._graphs)}), {k / fast_s:12.0f} model-steps/s; "
            f"train_runs (1 epoch, {trainer.total} steps, results written) {wall:6.2f} s",
            flush=True,
        )
        del trainer
        if device == "cuda":
            torch.cuda.empty_cache()
    base = rows[0]
    for r in rows:
        r["step_time_vs_k1"] = r["step_ms"] / base["step_ms"]
        r["throughput_vs_k1"] = r["model_steps_per_s"] / base["model_steps_per_s"]
        r["graph_step_time_vs_k1"] = r["graph_step_ms"] / base["graph_step_ms"]
    return rows


def optimizers_bench(device: str, k: int, tmp: Path) -> list[dict]:
    """Plain vs captured step per optimizer at one K (on a CPU both are the plain step)."""
    rows = []
    for name in ("momentum", "adam", "rmsprop", "adagrad"):
        trainer, idx, lr, lr_host = _trainer(device, k, tmp / f"opt-{name}", f"optimizer={name}")
        for i in range(3):
            trainer._step(idx[i], lr, lr_host, want_norm=False)
        plain = seconds_per_step(trainer._step, idx, lr, lr_host, device)
        try:
            trainer._advance(idx[0], lr, lr_host, want_norm=False)
            fast, error = seconds_per_step(trainer._advance, idx, lr, lr_host, device), None
        except Exception as e:  # the failure goes into the JSON; the other figures stand
            fast, error = float("nan"), f"{type(e).__name__}: {e}"
        row = {"optimizer": name, "k": k, "step_ms": 1e3 * plain, "graph_step_ms": 1e3 * fast}
        row.update(captured=bool(trainer._graphs), error=error)
        rows.append(row)
        print(f"{name:9s} K={k}: plain {1e3 * plain:.3f} ms/step, captured {1e3 * fast:.3f} ({row['captured']})")
    return rows


def compile_bench(device: str, k: int, tmp: Path, budget_s: float = 180.0) -> dict:
    """The step of one pack (momentum) five ways: which is fastest, and what compiling costs. Compiling on a
    GPU can take minutes: ways not started within budget_s are recorded as skipped (the call has 8 minutes)."""
    from functools import partial

    out: dict = {"k": k}
    ways = ["plain", "cuda_graph", "compile", "compile_reduce_overhead", "compile_in_cuda_graph"]
    start = time.perf_counter()
    for way in ways if device == "cuda" else ["plain", "compile"]:
        if time.perf_counter() - start > budget_s:
            out[way] = {"error": f"skipped: the compile comparison's {budget_s:.0f} s were spent"}
            continue
        trainer, idx, lr, lr_host = _trainer(device, k, tmp / f"compile-{way}")
        step = partial(trainer._step, lr_host=None, want_norm=False)
        try:
            t0 = time.perf_counter()
            if way == "plain":
                fn = step
            elif way == "cuda_graph":
                trainer._advance(idx[0], lr, lr_host, want_norm=False)  # captures
                fn = partial(trainer._advance, lr_host=lr_host, want_norm=False)
            elif way == "compile_in_cuda_graph":
                from sweep.graph_step import CapturedStep

                compiled = torch.compile(step, fullgraph=True)
                compiled(idx[0], lr)
                graph = CapturedStep(compiled, idx[0], lr, trainer._forward_backward)
                fn = graph.replay
            else:
                mode = "reduce-overhead" if way == "compile_reduce_overhead" else "default"
                fn = torch.compile(step, fullgraph=True, mode=mode)
            for i in range(3):
                fn(idx[i], lr)
            sync(device)
            first = time.perf_counter() - t0
            ms = 1e3 * seconds_per_step(lambda i, lr, _h, want_norm: fn(i, lr), idx, lr, lr_host, device)
            out[way] = {"step_ms": ms, "setup_s": first}
            print(f"{way:24s} K={k}: {ms:.3f} ms/step (set-up and first steps {first:.1f} s)", flush=True)
        except Exception as e:
            out[way] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            print(f"{way:24s} failed: {out[way]['error']}", flush=True)
    timed = {w: v["step_ms"] for w, v in out.items() if isinstance(v, dict) and "step_ms" in v}
    out["fastest"] = min(timed, key=timed.get) if timed else None
    return out


def single_bench(device: str, epochs: int, n_train: int, tmp: Path) -> dict:
    root = fake_mnist(tmp / "mnist", n_train=n_train, n_test=max(1000, n_train // 6))
    ov = [
        "data=mnist",
        f"data.root={root}",
        "model.hidden=[512,512]",
        "batch_size=1024",
        f"epochs={epochs}",
        f"device={device}",
        "wandb.mode=disabled",
        "optimizer=momentum",
        "lr=0.01",
        "log_every=50",
    ]
    cfg = make_cfg(tmp / "single", *ov)
    data = dataset(cfg["data"], device=device)
    # the textbook loop as tutorials write it: CPU tensors in a DataLoader, each batch moved to the device
    x, y = data.x_train.cpu(), data.y_train.cpu()
    model_sizes = [784, 512, 512, 10]
    base = _textbook_on(device, x, y, model_sizes, 1024, epochs)
    (s,) = train_runs([cfg], progress=False)
    return {
        "textbook_samples_per_s": base,
        "sweep_samples_per_s": s["samples_per_s"],
        "ratio": s["samples_per_s"] / base,
    }


def _textbook_on(device: str, x, y, sizes, batch, epochs) -> float:
    if device == "cpu":
        return textbook(x, y, sizes, batch, epochs)
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, pin_memory=True)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    sync(device)
    return epochs * len(x) / (time.perf_counter() - t0)


def grid_bench(device: str, procs: int, tmp: Path) -> dict:
    """64 configs (16 lrs x 4 seeds, digits, 5 epochs): one pack vs separate processes (scaled from `procs`)."""
    grid = [(f"{0.005 * 1.4**i:.4g}", s) for i in range(16) for s in range(4)]
    common = [*DIGITS, "epochs=5", f"device={device}"]
    cfgs = [make_cfg(tmp / "grid-pack", *common, f"lr={lr}", f"seed={s}") for lr, s in grid]
    t0 = time.perf_counter()
    train_runs(cfgs, pack=64, progress=False)
    pack = time.perf_counter() - t0
    env = dict(os.environ, WANDB_SILENT="true")
    t0 = time.perf_counter()
    for lr, s in grid[:procs]:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sweep.cli",
                "run",
                *common,
                f"lr={lr}",
                f"seed={s}",
                f"out_dir={tmp / 'grid-procs'}",
            ],
            check=True,
            capture_output=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
    separate = (time.perf_counter() - t0) * 64 / procs
    print(
        f"grid of 64: one pack {pack:.1f} s; 64 processes {separate:.1f} s (measured {procs}, scaled): "
        f"{separate / pack:.0f}x",
        flush=True,
    )
    return {"pack_s": pack, "separate_processes_s": separate, "measured_processes": procs, "ratio": separate / pack}


def auto_bench(device: str, tmp: Path) -> dict:
    small = make_cfg(tmp / "auto", *DIGITS, f"device={device}")
    huge = make_cfg(tmp / "auto", *DIGITS, f"device={device}", "model.hidden=[8192,8192]")
    out = {"small_k": auto_pack_size(small, 64, 10, 64), "large_k": auto_pack_size(huge, 64, 10, 64)}
    if device == "cuda":
        free, total = torch.cuda.mem_get_info()
        out.update(free_gib=free / 2**30, total_gib=total / 2**30)
    print(f"pack=auto: K={out['small_k']} for 64-64-64-10, K={out['large_k']} for 64-8192-8192-10", flush=True)
    return out


def table(res: dict) -> str:
    lines = [
        f"sweep gpu-check on {res['device_name']} (torch {res['torch']}, {res['mode']} mode)",
        f"tests: {res['tests']['summary']}",
        "",
        f"{'K':>6s} {'ms/step':>9s} {'graph ms/step':>14s} {'graph gain':>11s} {'model-steps/s':>15s} "
        f"{'graph step vs K=1':>18s} {'train_runs s':>13s}",
    ]
    for r in res["pack"]:
        lines.append(
            f"{r['k']:6d} {r['step_ms']:9.3f} {r['graph_step_ms']:14.3f} {r['graph_speedup']:10.1f}x "
            f"{r['graph_model_steps_per_s']:15.0f} {r['graph_step_time_vs_k1']:17.2f}x {r['train_runs_s']:13.2f}"
        )
    s = res["single"]
    lines += [
        "",
        f"784-512-512-10, B=1024: sweep {s['sweep_samples_per_s']:.0f}/s vs textbook "
        f"{s['textbook_samples_per_s']:.0f}/s = {s['ratio']:.2f}x",
    ]
    g = res["grid"]
    lines += [
        f"64-config grid: one pack {g['pack_s']:.1f} s vs 64 processes {g['separate_processes_s']:.0f} s "
        f"(measured on {g['measured_processes']}, scaled) = {g['ratio']:.0f}x"
    ]
    a = res["auto"]
    lines += [f"pack=auto: K={a['small_k']} (64-64-64-10), K={a['large_k']} (64-8192-8192-10)"]
    lines += ["", "optimizer  K      ms/step  graph ms/step  captured"]
    for r in res["optimizers"]:
        lines.append(
            f"{r['optimizer']:9s} {r['k']:5d} {r['step_ms']:10.3f} {r['graph_step_ms']:14.3f}  {r['captured']}"
        )
    c = res["compile"]
    lines += ["", f"the step of K={c['k']} (momentum) five ways; fastest: {c['fastest']}"]
    for way, v in c.items():
        if isinstance(v, dict):
            got = f"{v['step_ms']:.3f} ms/step (set-up {v['setup_s']:.1f} s)" if "step_ms" in v else v["error"]
            lines.append(f"  {way:24s} {got}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--skip", default="", help="comma-separated parts to skip: tests,pack,single,optimizers,compile,grid,auto"
    )
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: --device cuda but torch.cuda.is_available() is False here: use --device cpu")
    size = SIZES[args.device]
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "mode": args.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device_name": torch.cuda.get_device_name()
        if args.device == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    res["tests"] = run_tests(args.device, args.out) if "tests" not in skip else {"summary": "skipped"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts = {
            "pack": lambda: pack_bench(args.device, size["ks"], size["steps"], tmp),
            "single": lambda: single_bench(args.device, size["single_epochs"], size["n_train"], tmp),
            "optimizers": lambda: optimizers_bench(args.device, size["k_one"], tmp),
            "compile": lambda: compile_bench(args.device, size["k_one"], tmp),
            "grid": lambda: grid_bench(args.device, size["procs"], tmp),
            "auto": lambda: auto_bench(args.device, tmp),
        }
        for name, fn in parts.items():
            if name not in skip:
                res[name] = fn()
                (args.out / "gpu_check.json").write_text(json.dumps(res, indent=1))  # partial results survive
    text = table(res) if not skip else json.dumps(res, indent=1)
    (args.out / "gpu_check.txt").write_text(text)
    print(text)
    sys.exit(0 if res["tests"].get("returncode", 0) == 0 else 1)


if __name__ == "__main__":
    main()
