"""From a Hydra grid to trained runs: validate every point, name and record the sweep, then run its packs
here (cluster.backend=local) or submit them as one SLURM job array (cluster.backend=slurm)."""

from __future__ import annotations

import hashlib
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from sweep.config import ConfigError, run_id
from sweep.errors import one_line
from sweep.results import read_record, write_json

SWEEP_FILE = "sweep.json"


def grid_composer(loader: Any, config: DictConfig) -> Callable[[Sequence[str]], dict]:
    """compose(overrides) for the points of one grid, composing each distinct choice of config groups once.

    Hydra composes a config from scratch per point (~85 ms here); grid points usually differ only in values
    (lr, seed, ...), which are applied to a copy of the composed groups exactly as Hydra applies overrides."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweep.app import group_choices

    parser = OverridesParser.create(config_loader=loader)
    composed: dict[tuple[str, ...], DictConfig] = {}
    parsed_lines: dict[str, Any] = {}  # grids repeat the same override strings: parse each once

    group_keys: dict[str, bool] = {}

    def is_structural(o: Any) -> bool:
        key = o.key_or_group
        if key not in group_keys:
            group_keys[key] = key.startswith("hydra") or loader.repository.group_exists(key)
        return group_keys[key] or o.is_add() or o.is_delete()

    def parse(line: str) -> Any:
        if line not in parsed_lines:
            parsed_lines[line] = parser.parse_overrides([line])[0]
        return parsed_lines[line]

    def compose(overrides: Sequence[str]) -> dict:
        parsed = [parse(line) for line in overrides]
        structural = tuple(o.input_line for o in parsed if is_structural(o))
        if structural not in composed:
            cfg = loader.load_sweep_config(config, list(structural))
            picked = group_choices(cfg.hydra)
            with open_dict(cfg):
                cfg.pop("hydra")  # Hydra's own node is most of the config and no part of a run
                cfg["choices"] = picked
            composed[structural] = cfg
        cfg = composed[structural]
        values = [o for o in parsed if not is_structural(o)]
        # Apply the value overrides in place (type-checked by the schema, as Hydra does), read the result,
        # and put the old values back: a deep copy of the config per point cost more than all the rest.
        saved = [(o.key_or_group, OmegaConf.select(cfg, o.key_or_group)) for o in values]
        saved = [(k, OmegaConf.to_container(v) if isinstance(v, (DictConfig, ListConfig)) else v) for k, v in saved]
        try:
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        finally:
            for key, old in saved:
                OmegaConf.update(cfg, key, old, merge=False)

    return compose


def compose_grid(compose: Callable[[Sequence[str]], dict], job_overrides: Sequence[Sequence[str]]) -> list[dict]:
    """Resolve and validate every grid point; the first bad one raises ConfigError naming the point."""
    from sweep.app import resolved

    cfgs = []
    has_custom = any(
        o.lstrip("+").replace(" ", "") in ("optimizer=custom", "optimizer.name=custom")
        for ov in job_overrides
        for o in ov
    )
    for ov in job_overrides:
        try:
            cfgs.append(resolved(compose(ov), name="?", grid_has_custom=has_custom))
        except Exception as e:
            msg = one_line(e)
            if msg is None:
                raise
            raise ConfigError(f"grid point [{' '.join(ov)}]: {msg}; nothing was run or submitted") from None
    from sweep.data import DataError
    from sweep.preflight import check_data

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
    so finished runs are skipped and unfinished ones resumed."""
    earlier = [
        p.parent.name
        for p in sorted(out_dir.glob(f"*/{SWEEP_FILE}"), key=lambda p: p.stat().st_mtime)
        if (read_record(p) or {}).get("grid_key") == key
    ]
    if earlier:
        return earlier[-1]
    return "sweep-" + datetime.now().strftime("%Y%m%d-%H%M%S")


def launch_grid(loader: Any, config: DictConfig, job_overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    """Validate every grid point, record the sweep, then run it here or submit it (cluster.backend)."""
    cfgs = compose_grid(grid_composer(loader, config), job_overrides)
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
        c["wandb"]["run_name"] = display_name(c, ov, swept)
    sweep_dir = out_dir / name
    previous = read_record(sweep_dir / SWEEP_FILE)
    record = dict(previous or {})
    record.update(
        name=name,
        grid_key=grid_key(ids),
        swept=swept,
        argv=sys.argv[1:],
        created=record.get("created", datetime.now().isoformat(timespec="seconds")),
        runs=[{"run_id": i, "overrides": list(ov)} for i, ov in zip(ids, explicit)],
    )
    write_json(sweep_dir / SWEEP_FILE, record)
    cluster = cfgs[0]["cluster"]
    if cluster["backend"] == "slurm":
        from sweep.launch.slurm import submit, undo_unqueued_record

        try:
            results = submit(cfgs, sweep_dir)
        except BaseException:
            undo_unqueued_record(sweep_dir, previous)  # a refused submission leaves no phantom runs
            raise
    else:
        from sweep.app import train_guarded
        from sweep.launch.local import run_local

        results = train_guarded(lambda: run_local(cfgs, sweep_dir))
    failed = sum(r.get("status") == "failed" for r in results)
    if failed:
        print(
            f"sweep: {failed} of {len(results)} runs failed; their tracebacks are in error.txt "
            f"(`sweep status {shlex.quote(str(sweep_dir))}` lists them)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    rets = []
    for ov, res in zip(job_overrides, results):
        r = JobReturn(overrides=list(ov), status=JobStatus.COMPLETED)
        r._return_value = res
        rets.append(r)
    return rets
