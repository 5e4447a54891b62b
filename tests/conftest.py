"""Shared fixtures: compose real configs from conf/ (the same path `sweep run` takes) and run the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]

# A small pack for comparing a fast path (a CUDA graph, the compiled step) with the plain step: spirals, 3 epochs of
# 3 full batches and a smaller last one (which takes the plain step); a sync every 3 steps, so that syncs (the
# steps that also take grad norms: a CUDA graph of their own) fall on full batches too, not only on epoch ends.
FAST_PATH_PACK = [
    "epochs=3",
    "data=spirals",
    "data.n_samples=300",
    "batch_size=64",
    "model.hidden=[32,32]",
    "wandb.mode=disabled",
    "log_every=3",
]


def assert_same_histories(xs: list[dict], ys: list[dict]) -> None:
    """Runs xs[i] and ys[i] have equal histories in the store (every value, bit for bit)."""
    from store_helpers import assert_same_histories as same

    same(xs, ys)


def kill_when_held(cmd: list[str], step: int, cwd: Path | None = None) -> int:
    """Start `cmd` (a `sweep run`), wait until it announces that it holds after its checkpoint at a step >= `step`
    (SWEEP_HOLD_AFTER_CHECKPOINT, honoured by the trainer), SIGKILL it there, and return that step."""
    import re
    import signal

    env = dict(os.environ, SWEEP_HOLD_AFTER_CHECKPOINT=str(step))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    held, seen = None, []
    for line in proc.stderr:
        seen.append(line)
        m = re.search(r"held after the checkpoint at step (\d+)", line)
        if m:
            held = int(m.group(1))
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert held is not None, "the run ended without holding at a checkpoint:\n" + "".join(seen[-20:])
    return held


def make_cfg(out_dir: Path, *overrides: str) -> dict:
    """A validated, resolved run config, composed exactly as `sweep run <overrides>` would."""
    from sweep.compose import resolved  # registers the schema and the launcher

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"out_dir={out_dir}", *overrides])
    return resolved(cfg)


def sweep_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the installed `sweep` console script."""
    e = dict(os.environ, **(env or {}))
    e = {k: v for k, v in e.items() if v is not None}  # env={"X": None} removes X
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sweep {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def stop_after(n_syncs: int):
    """A should_stop for train_runs that turns true at the n-th sync point: a deterministic preemption."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= n_syncs

    return should_stop


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: one thread is fastest, and immune to other processes competing for the cores."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def slurm_problem() -> str | None:
    """Why the dev SLURM cluster cannot be used (None when it can): the launcher tests skip with this."""
    if shutil.which("sbatch") is None:
        return "`sbatch` is not on PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"`scontrol ping` failed: {e}"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"`scontrol ping` says: {(ping.stdout + ping.stderr).strip()}"
    return None
