"""Where a run came from: the code version (git, or a SLURM job's code snapshot), the environment, the job id."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

from sweep.results import read_json


def git_state(path: Path) -> dict:
    """{"commit", "dirty"} of the git checkout holding `path`, or {} outside one."""
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return {}
        dirty = (
            subprocess.run(
                ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            != ""
        )
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {}


def provenance() -> dict:
    """Where a run came from (`code_provenance`) and the CPU threads it trained with."""
    return {**code_provenance(), "threads": _threads()}


@lru_cache(maxsize=1)
def code_provenance() -> dict:
    """Where a run came from: code version (a SLURM job's code snapshot says where it was taken), environment."""
    here = Path(__file__).resolve().parent
    snapshot = read_json(here.parent / "SOURCE.json")
    git = snapshot.get("git", {}) if snapshot else git_state(here)
    from sweep import __version__

    return {
        "sweep": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "git": git,
        "code": str(here.parent if snapshot else here),
    }


def _threads() -> str:
    """How many CPU threads torch trains with, and why (sweep.device.set_threads_from_allocation)."""
    from sweep.device import THREADS

    return str(THREADS.get("why") or f"{torch.get_num_threads()} (torch's default)")


def slurm_job_id() -> str | None:
    """The id squeue/sacct show: <array job>_<task> for array tasks."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")
