"""conf/sweeps/*.yaml: each named sweep composes (`+sweeps=<name>`), its hydra.sweeper.params expand (as Hydra's
BasicSweeper expands them) into a grid whose every point validates, the grid stays laptop-sized, and one of them
runs for real with overrides that shrink it (command-line overrides win over the file)."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, sweep_cli
from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

SWEEPS = sorted(p.stem for p in (REPO / "conf" / "sweeps").glob("*.yaml"))
# what each study must sweep (as sweep.json's override keys)
MUST_SWEEP = {
    "optimizers": {"optimizer", "lr", "seed"},
    "lr_schedules": {"schedule", "seed"},
    "batch_size": {"batch_size", "seed"},
    "init": {"init", "seed"},
    "restarts": {"seed"},
    "sampling": {"sampling", "seed"},
}


def test_every_named_sweep_exists():
    assert set(SWEEPS) == set(MUST_SWEEP)


def _grid(params: dict) -> list[list[str]]:
    parser = OverridesParser.create()
    overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
    return BasicSweeper.split_arguments(overrides, None)[0]


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_file_composes_and_every_grid_point_validates(name, tmp_path):
    from sweep.app import resolved  # registers the schema
    from sweep.config import run_id

    text = (REPO / "conf" / "sweeps" / f"{name}.yaml").read_text()
    assert text.splitlines()[0] == "# @package _global_"  # Hydra reads the header only up to another comment
    assert f"sweep run -m +sweeps={name}" in text  # the command that runs it
    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        base = [f"+sweeps={name}", f"out_dir={tmp_path}"]
        cfg = compose(config_name="config", overrides=base, return_hydra_config=True)
        params = dict(cfg.hydra.sweeper.params)
        assert MUST_SWEEP[name] <= set(params), params
        assert cfg.name == name
        assert cfg.epochs <= 10
        grid = _grid(params)
        assert 2 <= len(grid) <= 100, f"{name}: {len(grid)} runs is not laptop-sized"
        # every value of every swept key at least once (all of the grid would cost a compose per run)
        seen: dict[str, set] = {}
        ids = set()
        for job in grid:
            new = [o for o in job if o not in seen.setdefault(o.partition("=")[0], set())]
            if not new:
                continue
            for o in job:
                seen[o.partition("=")[0]].add(o)
            ids.add(run_id(resolved(compose(config_name="config", overrides=[*base, *job]))))
        assert all(len(v) == len(_grid({k: params[k]})) for k, v in seen.items())
        assert len(ids) > 1


def test_one_named_sweep_runs_for_real_shrunk_by_overrides(tmp_path):
    out = tmp_path / "runs"
    sweep_cli(
        "run",
        "-m",
        "+sweeps=init",
        "epochs=1",
        "seed=0",
        "init=zeros,normal",
        "model.hidden=[16]",
        "wandb.mode=disabled",
        f"out_dir={out}",
        cwd=tmp_path,
        check=True,
    )
    record = json.loads((out / "init" / "sweep.json").read_text())
    assert record["name"] == "init" and record["swept"] == ["init"]
    assert len(record["runs"]) == 2
    for r in record["runs"]:
        s = json.loads((out / "init" / r["run_id"] / "summary.json").read_text())
        assert s["status"] == "done" and s["epochs"] == 1
    inits = {json.loads((out / "init" / r["run_id"] / "summary.json").read_text())["run_id"] for r in record["runs"]}
    assert len(inits) == 2


def test_a_group_choice_in_a_sweep_file_yields_to_the_command_line(tmp_path):
    from sweep.app import resolved

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        c = resolved(compose(config_name="config", overrides=["+sweeps=lr_schedules", f"out_dir={tmp_path}"]))
        assert c["optimizer"]["name"] == "momentum" and c["optimizer"]["momentum"] == 0.9
        c = resolved(
            compose(config_name="config", overrides=["+sweeps=lr_schedules", "optimizer=adam", f"out_dir={tmp_path}"])
        )
        assert c["optimizer"]["name"] == "adam"
