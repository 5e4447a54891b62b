"""What sweep tells Weights & Biases, and where: each run's wandb id, the server, the lean settings of a run.

wandb itself is imported only by sweep/mirror.py (the store's mirror, off the training path); this module is
torch- and wandb-free, so the trainer can give a run its id and `sweep sync` can ask whether the server answers
without loading either.
"""

from __future__ import annotations

import os
import secrets
import string
from typing import Any
from urllib.parse import urlparse

# Per-run metadata wandb would collect (pip freeze, git, machine info, system stats) costs more than opening the
# run itself (benchmarks/README.md), which a sweep of many small runs pays per run; the run's config and summary
# already carry what matters: versions, git commit, device, SLURM job id.
LEAN_SETTINGS = dict(
    silent=True,
    console="off",
    x_disable_stats=True,
    x_disable_meta=True,
    x_disable_machine_info=True,
    x_save_requirements=False,
    disable_git=True,
    save_code=False,
    disable_code=True,
    disable_job_creation=True,
)


def server_url() -> str:
    """The wandb server this process talks to (WANDB_BASE_URL, or wandb's public one)."""
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def reachable(timeout_s: float) -> bool:
    """Does the wandb server answer HTTP within timeout_s? (Compute nodes often cannot reach it; a server that
    accepts connections and never answers would otherwise cost a long wait while wandb retries.)"""
    import http.client

    url = urlparse(server_url())
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = cls(url.hostname or "api.wandb.ai", url.port, timeout=timeout_s)
    try:
        conn.request("HEAD", "/")
        conn.getresponse()  # any status will do: something answered
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def new_wandb_id() -> str:
    """8 random base-36 characters, as wandb makes its run ids."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def wandb_id(rec: Any) -> str:
    """The wandb id of the run whose newest store record is `rec` (a sweep.store.RunRecord, or None): made once,
    then carried by every summary of the run (or read from a run folder of the earlier layout), so the same config
    in two sweeps or two students' folders never shares a wandb run, and a resume continues it."""
    from sweep.results import RunDir

    for r in (rec, *(rec.older if rec is not None else ())):
        if r is None:
            continue
        if r.summary is not None and isinstance(r.summary.get("wandb_id"), str):
            return r.summary["wandb_id"]
        if r.legacy is not None:
            try:
                existing = RunDir(r.legacy).wandb_id.read_text().strip()
                if existing:
                    return existing
            except OSError:
                pass
    return new_wandb_id()
