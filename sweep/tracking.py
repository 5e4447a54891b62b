"""Weights & Biases for one run: offline by default, never able to fail or stall training.

Every problem with wandb (no network, timeout, quota, a missing package) is reported once on stderr and the run
continues with tracking off; the local results store stays complete either way.
"""

from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

_warned: set[str] = set()

# Per-run metadata wandb would collect (pip freeze, git, machine info, system stats) tripled the cost of opening a
# run (0.09 -> 0.03 s measured here), which a pack of K small models pays K times. The run's config and summary
# already carry what matters: versions, git commit, device, SLURM job id.
_LEAN = dict(
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


def _warn_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        print(f"sweep: wandb: {msg}", file=sys.stderr)


def server_url() -> str:
    """The wandb server this process talks to (WANDB_BASE_URL, or wandb's public one)."""
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def _reachable(timeout_s: float) -> bool:
    """Does the wandb server answer HTTP within timeout_s? (Compute nodes often cannot reach it; a server that
    accepts connections and never answers would otherwise cost every run its init timeout, and the process a
    long wait at exit while wandb retries the upload.)"""
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


class Tracker:
    """One wandb run (id = the run's own random wandb id, group = the sweep's name) or a no-op when tracking is off.

    `start` opens the run on a background thread: wandb.init costs ~0.1-0.5 s, which for a pack of K small
    models would rival the training itself, so it overlaps with training and rows are buffered until it is up.
    """

    def __init__(self, run: Any = None, pending: Future | None = None) -> None:
        self.run = run
        self._pending = pending
        self._rows: list[dict] = []

    @classmethod
    def start(cls, executor: Executor, shared: dict | None = None, **kw: Any) -> Tracker:
        """Open the run on `executor`. Runs of one pack pass the same `shared` dict: once an online init has
        failed (a server that accepts connections and never answers costs init_timeout_s per run), the rest of
        the pack logs offline at once, so wandb's cost per pack is bounded by one timeout, not K."""
        if kw.get("mode") == "disabled":
            return cls()
        return cls(pending=executor.submit(lambda: cls.open(shared=shared, **kw).run))

    def _ready(self, wait: bool) -> bool:
        if self._pending is not None and (wait or self._pending.done()):
            try:
                self.run = self._pending.result()
            except Exception as e:
                _warn_once(f"init failed ({e}); tracking is off for this run")
                self.run = None
            self._pending = None
            rows, self._rows = self._rows, []
            self.log(rows)
        return self._pending is None

    @classmethod
    def open(
        cls,
        *,
        run_id: str,
        run_dir: Path,
        group: str,
        config: dict,
        mode: str,
        project: str,
        entity: str | None,
        tags: list[str],
        init_timeout_s: float,
        name: str | None = None,
        shared: dict | None = None,
    ) -> Tracker:
        if mode == "disabled":
            return cls()
        try:
            import wandb
        except Exception as e:  # a broken wandb install must not stop training
            _warn_once(f"cannot import wandb ({e}); tracking is off")
            return cls()
        shared = {} if shared is None else shared
        kw = dict(
            id=run_id,
            name=name,
            group=group,
            job_type="train",
            project=project,
            entity=entity,
            tags=tags,
            config=config,
            dir=str(run_dir),
            resume="allow",
            reinit="create_new",
        )
        if mode == "online" and shared.get("online_failed"):
            mode = "offline"
        if mode == "online" and not _reachable(min(3.0, init_timeout_s)):
            _warn_once("the wandb server is unreachable; logging offline instead (upload later: sweep sync SWEEP)")
            shared["online_failed"] = True
            mode = "offline"
        for attempt in [mode, "offline"] if mode == "online" else [mode]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run = wandb.init(mode=attempt, settings=wandb.Settings(init_timeout=init_timeout_s, **_LEAN), **kw)
                return cls(run)
            except Exception as e:
                if attempt == "online":
                    shared["online_failed"] = True
                    wandb.teardown()  # else the half-made online run keeps its id and the offline retry is refused
                nxt = "falling back to offline" if attempt == "online" else "tracking is off for this run"
                _warn_once(f"init in {attempt} mode failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); {nxt}")
        return cls()

    def log(self, rows: list[dict]) -> None:
        if not self._ready(wait=False):
            self._rows.extend(rows)
            return
        if self.run is None:
            return
        try:
            for row in rows:
                self.run.log({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))
        except Exception as e:
            _warn_once(f"log failed ({e}); further logging of this run is skipped")
            self.run = None

    def finish(self, summary: dict, exit_code: int = 0) -> None:
        self._ready(wait=True)
        if self.run is None:
            return
        try:
            self.run.summary.update(summary)
            self.run.finish(exit_code=exit_code)
        except Exception as e:
            _warn_once(f"finish failed ({e})")
        self.run = None
