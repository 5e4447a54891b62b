"""From a Hydra grid to trained runs: validate every point, name and record the sweep, then run its packs
here (cluster.backend=local) or submit them as one SLURM job array (cluster.backend=slurm)."""
from __future__ import annotations

import hashlib
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from sweep.config import ConfigError, run_id
from sweep.errors import one_line
from sweep.results import read_json, write_json

SWEEP_FILE = "sweep.json"


def compose_grid(compose: Callable[[Sequence[str]], DictConfig], job_overrides: Sequence[Sequence[str]]) -> list[dict]:
    """Resolve and validate every grid point; the first bad one raises ConfigError naming the point."""
    from sweep.app import resolved

    cfgs = []
    for ov in job_overrides:
        try:
            cfgs.append(resolved(compose(ov), name="?"))
        except Exception as e:
            msg = one_line(e)
            if msg is None:
                raise
            raise ConfigError(f"grid point [{' '.join(ov)}]: {msg}; nothing was run or submitted") from None
    from sweep.data import DataError
    from sweep.engine import check_data

    try:
        check_data(cfgs)
    except DataError as e:
        raise ConfigError(f"{e}; nothing was run or submitted") from None
    return cfgs


def swept_keys(job_overrides: Sequence[Sequence[str]]) -> list[str]:
    """The override keys whose value differs across the grid (used for tags and analysis)."""
    values: dict[str, set[str]] = {}
    for ov in job_overrides:
        for o in ov:
            k, _, v = o.partition("=")
            values.setdefault(k.lstrip("+~"), set()).add(v)
    return sorted(k for k, vs in values.items() if len(vs) > 1 or len(job_overrides) == 1)


def grid_key(run_ids: Sequence[str]) -> str:
    return hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def choose_name(out_dir: Path, key: str) -> str:
    """A timestamped name for a new grid; the same grid submitted again continues its earlier sweep folder,
    so finished runs are skipped and unfinished ones resumed."""
    earlier = [p.parent.name for p in sorted(out_dir.glob(f"*/{SWEEP_FILE}"), key=lambda p: p.stat().st_mtime)
               if (read_json(p) or {}).get("grid_key") == key]
    if earlier:
        return earlier[-1]
    return "sweep-" + datetime.now().strftime("%Y%m%d-%H%M%S")


def launch_grid(compose: Callable[[Sequence[str]], DictConfig],
                job_overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    cfgs = compose_grid(compose, job_overrides)
    ids = [run_id(c) for c in cfgs]
    out_dir = Path(cfgs[0]["out_dir"])
    names = {c["name"] for c in cfgs}
    explicit = [job_overrides[i] for i, c in enumerate(cfgs)]
    name = cfgs[0]["name"] if names != {"?"} else choose_name(out_dir, grid_key(ids))
    swept = swept_keys(job_overrides)
    for c, ov in zip(cfgs, job_overrides):
        c["name"] = name
        tags = [o.lstrip("+~") for o in ov if o.partition("=")[0].lstrip("+~") in swept]
        c["wandb"]["tags"] = list(dict.fromkeys([*c["wandb"]["tags"], *tags]))[:64]
    sweep_dir = out_dir / name
    record = read_json(sweep_dir / SWEEP_FILE) or {}
    record.update(name=name, grid_key=grid_key(ids), swept=swept, argv=sys.argv[1:],
                  created=record.get("created", datetime.now().isoformat(timespec="seconds")),
                  runs=[{"run_id": i, "overrides": list(ov)} for i, ov in zip(ids, explicit)])
    write_json(sweep_dir / SWEEP_FILE, record)
    cluster = cfgs[0]["cluster"]
    if cluster["backend"] == "slurm":
        from sweep.launch.slurm import submit

        results = submit(cfgs, sweep_dir)
    else:
        from sweep.launch.local import run_local

        results = run_local(cfgs, sweep_dir)
    rets = []
    for ov, res in zip(job_overrides, results):
        r = JobReturn(overrides=list(ov), status=JobStatus.COMPLETED)
        r._return_value = res
        rets.append(r)
    return rets
