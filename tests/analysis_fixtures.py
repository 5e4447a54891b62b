"""Session-scoped sweeps made once with the real CLI, shared by the analysis/report/collect/status/sync tests.

A test module uses them with `pytest_plugins = ["analysis_fixtures"]` (one registration, so the session-scoped
sweeps are made once for all modules; importing the fixtures into each module would make them once per module).
Tests that change files work on a `copy_sweep(...)`, never on the shared folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import sweep_cli

TINY = ["epochs=2", "model.hidden=[16]", "log_every=5"]
# optimizer x lr x schedule x batch_size x seed = 32 runs in 4 packs; lr=8 diverges, the rest trains
SMALL_GRID = ["optimizer=sgd,adam", "lr=0.05,8", "schedule=constant,cosine", "batch_size=64,full", "seed=0,1"]
INIT_GRID = ["init=lecun_normal,zeros,normal", "sampling=shuffle_each_epoch,with_replacement", "seed=0,1"]


def make_sweep(root: Path, name: str, grid: list[str], wandb_mode: str) -> Path:
    out = root / "runs"
    sweep_cli(
        "run",
        "-m",
        *grid,
        *TINY,
        f"wandb.mode={wandb_mode}",
        f"name={name}",
        f"out_dir={out}",
        cwd=root,
        check=True,
        env={"WANDB_SILENT": "true"},
    )
    return out / name


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> Path:
    """optimizer × lr × schedule × batch_size × seed, 2 epochs, wandb offline (for the sync tests)."""
    return make_sweep(tmp_path_factory.mktemp("small_sweep"), "small", SMALL_GRID, "offline")


@pytest.fixture(scope="session")
def init_sweep(tmp_path_factory) -> Path:
    """init × sampling × seed, 2 epochs, no wandb."""
    return make_sweep(tmp_path_factory.mktemp("init_sweep"), "inits", INIT_GRID, "disabled")


@pytest.fixture
def copy_sweep(tmp_path):
    """copy_sweep(src) -> a private copy of a sweep folder under tmp_path (wandb's relative symlinks kept)."""

    def copy(src: Path) -> Path:
        dst = tmp_path / "copy" / src.name
        shutil.copytree(src, dst, symlinks=True)
        return dst

    return copy
