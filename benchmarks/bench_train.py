"""Trainer throughput against the textbook DataLoader loop and the machine's matmul roofline.

    python benchmarks/bench_train.py          (about a minute on 2 CPU cores)

Both loops train the same MLP with SGD+momentum and cross-entropy on the same data for the same number of
samples; achieved FLOP/s = 6 × params × samples/s (forward 2, backward 4). Ratios are from this one run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fake_mnist, make_cfg, matmul_flops, params_of

from sweep.data import cached_splits as dataset
from sweep.runner import train_runs


def textbook(x: torch.Tensor, y: torch.Tensor, sizes: list[int], batch: int, epochs: int) -> float:
    """samples/s of the loop every tutorial shows: DataLoader(shuffle=True) + nn.Sequential + torch.optim."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    return epochs * len(x) / (time.perf_counter() - t0)


def sweep_trainer(out: Path, overrides: list[str]) -> float:
    cfg = make_cfg(out, *overrides, "wandb.mode=disabled", "optimizer=momentum", "lr=0.01", "log_every=50")
    (s,) = train_runs([cfg], progress=False)
    return s["samples_per_s"]


def main() -> None:
    torch.manual_seed(0)
    peak = matmul_flops()
    print(f"matmul roofline (fp32, 1024³, {torch.get_num_threads()} threads): {peak / 1e9:.0f} GFLOP/s\n")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = fake_mnist(tmp / "mnist")
        cases = [
            (
                "784-512-512-10, B=1024",
                ["data=mnist", f"data.root={root}", "model.hidden=[512,512]", "batch_size=1024", "epochs=2"],
                [784, 512, 512, 10],
            ),
            (
                "784-512-512-10, B=128",
                ["data=mnist", f"data.root={root}", "model.hidden=[512,512]", "batch_size=128", "epochs=1"],
                [784, 512, 512, 10],
            ),
            (
                "64-64-64-10 (digits), B=128",
                ["data=digits", "model.hidden=[64,64]", "batch_size=128", "epochs=40"],
                [64, 64, 64, 10],
            ),
        ]
        print(f"{'case':32s} {'textbook':>12s} {'sweep':>12s} {'ratio':>6s} {'sweep FLOP/s':>13s} {'of roofline':>11s}")
        for i, (name, ov, sizes) in enumerate(cases):
            cfg = make_cfg(tmp, *ov)
            data = dataset(cfg["data"])
            epochs, batch = cfg["epochs"], cfg["batch_size"]
            base = textbook(data.x_train, data.y_train, sizes, batch, epochs)
            ours = sweep_trainer(tmp / f"runs{i}", ov)
            flops = 6 * params_of(sizes) * ours
            print(
                f"{name:32s} {base:10.0f}/s {ours:10.0f}/s {ours / base:5.2f}x {flops / 1e9:9.1f} GF/s "
                f"{flops / peak:10.2f}"
            )


if __name__ == "__main__":
    main()
