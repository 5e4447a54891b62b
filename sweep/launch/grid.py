"""From a Hydra grid to trained runs: validate every point, name and record the sweep, then run its packs
here (cluster.backend=local) or submit them as SLURM job arrays (cluster.backend=slurm).

One multirun is one sweep folder, however many batches its sweeper launches: the first batch names the folder,
every batch adds its runs to the folder's sweep.json, Hydra's own record of the multirun is kept in its
.hydra/, and each job returns a float to the sweeper (sweep.compose.objective_value)."""

from __future__ import annotations

import hashlib
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sweep.compose import compose_grid, grid_composer, objective_value
from sweep.config import run_id
from sweep.results import SWEEP_FILE, read_record, write_json, write_text

HYDRA_DIR = ".hydra"  # Hydra's record of the multirun, inside the sweep's folder
HYDRA_RECORD = "multirun.yaml"


@dataclass
class Multirun:
    """What the batches of one multirun share (a sweeper such as Optuna launches one batch after another):
    the grid composer (its cache of composed config groups), the sweep folder the first batch named, and every
    batch's overrides so far, and how many of its runs failed."""

    compose: Optional[Callable[[Sequence[str]], dict]] = None
    sweep_dir: Optional[Path] = None
    overrides: list[list[str]] = field(default_factory=list)
    failed: int = 0  # runs that failed (an error, not a divergence) in any batch so far


def swept_keys(job_overrides: Sequence[Sequence[str]]) -> list[str]:
    """The override keys whose value differs across the grid (used for tags and analysis)."""
    values: dict[str, set[str]] = {}
    for ov in job_overrides:
        for o in ov:
            k, _, v = o.partition("=")
            values.setdefault(k.lstrip("+~"), set()).add(v)
    return sorted(k for k, vs in values.items() if len(vs) > 1 or len(job_overrides) == 1)


def display_name(cfg: dict, overrides: Sequence[str], swept: Sequence[str]) -> str:
    """A readable wandb run name from the swept values, e.g. "adam lr=0.01 seed=2" (a config group's choice
    appears as its option's name alone); the config's run_id when nothing is swept."""
    parts = []
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key not in swept:
            continue
        if key in ("optimizer", "optimizer.name") and value == "custom":  # a student's optimizer: its class
            value = str(cfg["optimizer"].get("cls") or value).rsplit(".", 1)[-1]
        parts.append(value if isinstance(cfg.get(key), dict) else f"{key.split('.')[-1]}={value}")
    return " ".join(parts)[:120] or run_id(cfg)


def grid_key(run_ids: Sequence[str]) -> str:
    return hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def choose_name(out_dir: Path, key: str) -> str:
    """A timestamped name for a new grid; the same grid submitted again continues its earlier sweep folder,
    so finished runs are skipped and unfinished ones resumed. (For a multirun of several batches, `key` is its
    first batch's: the same command proposes the same first batch again.)"""
    earlier = [
        p.parent.name
        for p in sorted(out_dir.glob(f"*/{SWEEP_FILE}"), key=lambda p: p.stat().st_mtime)
        if (read_record(p) or {}).get("grid_key") == key
    ]
    if earlier:
        return earlier[-1]
    return new_name()


def new_name() -> str:
    """The name of a new grid: sweep-<date>-<time>."""
    return "sweep-" + datetime.now().strftime("%Y%m%d-%H%M%S")


def launch_grid(
    loader: Any, config: DictConfig, job_overrides: Sequence[Sequence[str]], multirun: Optional[Multirun] = None
) -> list[JobReturn]:
    """Validate every point of this batch, add it to the multirun's sweep folder (named by its first batch),
    then run it here or submit it (cluster.backend).

    Returns one completed JobReturn per job, in order, whose return value is the run's objective, a float
    (sweep.compose.objective_value: NaN for a run without a result), so no run's outcome ends a sweeper's study.
    Runs that failed (an error, not a divergence) are counted on stderr and in `multirun.failed`: sweep's grid
    sweeper exits 1 at the end when there were any. A refused point raises ConfigError before anything is
    written."""
    multirun = multirun if multirun is not None else Multirun()
    if multirun.compose is None:
        multirun.compose = grid_composer(loader, config)
    cfgs = compose_grid(multirun.compose, job_overrides)
    ids = [run_id(c) for c in cfgs]
    first = multirun.sweep_dir is None
    if first:
        names = {c["name"] for c in cfgs}
        out_dir = Path(cfgs[0]["out_dir"])
        sweep_dir = out_dir / (cfgs[0]["name"] if names != {"?"} else choose_name(out_dir, grid_key(ids)))
    else:
        sweep_dir = multirun.sweep_dir
    name = sweep_dir.name
    overrides = [*multirun.overrides, *(list(ov) for ov in job_overrides)]
    swept = swept_keys(overrides)
    for c, ov in zip(cfgs, job_overrides):
        c["name"] = name
        tags = [o.lstrip("+~") for o in ov if o.partition("=")[0].lstrip("+~") in swept]
        c["wandb"]["tags"] = list(dict.fromkeys([*c["wandb"]["tags"], *tags]))[:64]
        c["wandb"]["run_name"] = display_name(c, ov, swept)
    previous = read_record(sweep_dir / SWEEP_FILE)
    record = dict(previous or {})
    record.update(
        name=name,
        grid_key=grid_key(ids) if first else record.get("grid_key", grid_key(ids)),
        swept=swept,
        argv=sys.argv[1:],
        created=record.get("created", datetime.now().isoformat(timespec="seconds")),
        runs=_with_runs(record.get("runs", []), ids, job_overrides),  # accumulates: batches, and commands
    )
    write_json(sweep_dir / SWEEP_FILE, record)
    multirun.sweep_dir, multirun.overrides = sweep_dir, overrides
    cluster = cfgs[0]["cluster"]
    if cluster["backend"] == "slurm":
        from sweep.launch.slurm import submit, undo_unqueued_record

        try:
            results = submit(cfgs, sweep_dir)
        except BaseException:
            undo_unqueued_record(sweep_dir, previous)  # a refused submission leaves no phantom runs
            raise
        if first:  # after the submission: a refused one leaves no folder behind
            _record_hydra(config, sweep_dir)
    else:
        from sweep.errors import train_guarded
        from sweep.launch.local import run_local

        if first:
            _record_hydra(config, sweep_dir)
        results = train_guarded(lambda: run_local(cfgs, sweep_dir))
    failed = sum(r.get("status") == "failed" for r in results)
    if failed:
        multirun.failed += failed
        print(
            f"sweep: {failed} of {len(results)} runs failed; `sweep status {shlex.quote(str(sweep_dir))}` lists them "
            "and `sweep show SWEEP RUN_ID` prints a run's traceback",
            file=sys.stderr,
        )
    rets, records = [], None
    for c, ov, res in zip(cfgs, job_overrides, results):
        r = JobReturn(overrides=list(ov), status=JobStatus.COMPLETED)
        if _needs_stored_summary(c, res) and records is None:  # the store read once for the whole grid
            from sweep.store import scan

            records = scan(sweep_dir)
        r.return_value = objective_value(c, _summary(c, res, records or {}))
        rets.append(r)
    return rets


def _with_runs(runs: Sequence[dict], ids: Sequence[str], job_overrides: Sequence[Sequence[str]]) -> list[dict]:
    """`runs` (sweep.json's list) with each new run_id added once, in order. The list only grows: it names every
    run this sweep's folder was asked to hold (a study continued by the same command, a grid extended under the
    same name), and a point proposed again is one run, trained and listed once."""
    out = list(runs)
    seen = {r.get("run_id") for r in out}
    for i, ov in zip(ids, job_overrides):
        if i not in seen:
            seen.add(i)
            out.append({"run_id": i, "overrides": list(ov)})
    return out


def _needs_stored_summary(cfg: dict, result: dict) -> bool:
    """A run skipped as finished, or a SLURM run: its result holds its status alone, not its objective."""
    return result.get("status") == "done" and cfg["objective"] not in result


def _summary(cfg: dict, result: dict, records: dict) -> dict:
    """The summary of a launched run: what training returned, or, for a run it skipped as finished or a SLURM
    run, the summary the store (`records`: sweep.store.scan) holds."""
    if not _needs_stored_summary(cfg, result):
        return result
    rec = records.get(result["run_id"])
    on_disk = (rec.summary if rec is not None else None) or {}
    return {**on_disk, "status": result["status"]}


def _record_hydra(config: DictConfig, sweep_dir: Path) -> None:
    """Keep Hydra's record of the multirun in the sweep's folder: write .hydra/multirun.yaml there, and point
    hydra.sweep.dir there, so what a sweeper writes when it ends (Optuna's optimization_results.yaml) lands there
    too. Hydra's sweeper writes multirun.yaml before it launches anything, when the folder is not named yet:
    into conf/config.yaml's scratch hydra.sweep.dir, outside out_dir, so a refused grid leaves nothing there."""
    hydra_dir = sweep_dir / HYDRA_DIR
    nodes = [config.hydra, *([HydraConfig.get()] if HydraConfig.initialized() else [])]
    for node in nodes:  # Hydra makes its node read-only once composed
        with read_write(node), open_dict(node):
            node.sweep.dir = str(hydra_dir)
            node.sweep.subdir = "."
    write_text(hydra_dir / HYDRA_RECORD, OmegaConf.to_yaml(config))
