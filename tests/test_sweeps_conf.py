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

from sweep import store

SWEEPS = sorted(p.stem for p in (REPO / "conf" / "sweeps").glob("*.yaml"))
# what each study must sweep (as sweep.json's override keys)
MUST_SWEEP = {
    "optimizers": {"optimizer", "lr", "seed"},
    "lr_schedules": {"schedule", "lr", "seed"},
    "batch_size": {"batch_size", "lr", "seed"},
    "init": {"init", "seed"},
    "restarts": {"optimizer", "lr", "seed"},
    "sampling": {"sampling", "seed"},
    "annealing": {"optimizer", "lr", "seed"},
}
MAX_RUNS = 200  # each study runs in minutes on a laptop CPU (restarts: 180 short runs)


def test_every_named_sweep_exists():
    assert set(SWEEPS) == set(MUST_SWEEP)


def _grid(params: dict) -> list[list[str]]:
    parser = OverridesParser.create()
    overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
    return BasicSweeper.split_arguments(overrides, None)[0]


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_file_composes_and_every_grid_point_validates(name, tmp_path):
    from sweep.compose import resolved  # registers the schema
    from sweep.config import run_id

    text = (REPO / "conf" / "sweeps" / f"{name}.yaml").read_text()
    assert text.splitlines()[0] == "# @package _global_"  # Hydra reads the header only up to another comment
    assert f"sweep run -m +sweeps={name}" in text  # the command that runs it
    assert "# What it should show:" in text  # the lesson, in the file
    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        base = [f"+sweeps={name}", f"out_dir={tmp_path}"]
        cfg = compose(config_name="config", overrides=base, return_hydra_config=True)
        params = dict(cfg.hydra.sweeper.params)
        assert MUST_SWEEP[name] <= set(params), params
        assert cfg.name == name
        assert cfg.epochs <= 10 or cfg.batch_size == "full"  # full batch: an epoch is one step
        grid = _grid(params)
        assert 2 <= len(grid) <= MAX_RUNS, f"{name}: {len(grid)} runs is not laptop-sized"
        assert len(_grid({"seed": params["seed"]})) >= 3, f"{name}: fewer than 3 seeds"
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
    assert record["name"] == "init" and record["swept"] == ["init", "init.bias"]  # the file sweeps init.bias
    assert len(record["runs"]) == 4
    for r in record["runs"]:
        s = store.summary(out / "init", r["run_id"])
        assert s["status"] == "done" and s["epochs"] == 1
    inits = {store.summary(out / "init", r["run_id"])["run_id"] for r in record["runs"]}
    assert len(inits) == 4


def test_a_group_choice_in_a_sweep_file_yields_to_the_command_line(tmp_path):
    from sweep.compose import resolved

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        c = resolved(compose(config_name="config", overrides=["+sweeps=lr_schedules", f"out_dir={tmp_path}"]))
        assert c["optimizer"]["name"] == "sgd" and c["optimizer"]["momentum"] == 0.0
        c = resolved(
            compose(
                config_name="config",
                overrides=["+sweeps=lr_schedules", "optimizer=momentum", f"out_dir={tmp_path}"],
            )
        )
        assert c["optimizer"]["name"] == "momentum" and c["optimizer"]["momentum"] == 0.9


def test_the_studies_grids_hold_what_their_lessons_need():
    """optimizers has AdaGrad; lr_schedules has 1/t and at least 3 base rates; annealing has a gradient method beside
    annealing; batch_size and lr_schedules give every configuration at least 3 rates to choose from on validation."""
    from hydra import compose as _compose

    def params(name):
        with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
            cfg = _compose(config_name="config", overrides=[f"+sweeps={name}"], return_hydra_config=True)
            return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}

    assert "adagrad" in params("optimizers")["optimizer"]
    sched = params("lr_schedules")
    assert {"inverse_time", "step", "constant"} <= set(sched["schedule"]) and len(sched["lr"]) >= 3
    ann = params("annealing")["optimizer"]
    assert "anneal" in ann and ({"gd", "sgd"} & set(ann))
    assert len(params("batch_size")["lr"]) >= 5
