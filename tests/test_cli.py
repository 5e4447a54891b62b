"""The `sweep` command as users type it: composition, Hydra's own flags, and one-line errors with nothing written."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import sweep_cli

from sweep import store

FAST = ["epochs=1", "model.hidden=[16]", "wandb.mode=disabled"]


def test_help_lists_commands_and_run_help_lists_groups(tmp_path):
    top = sweep_cli("--help", check=True)
    assert "run" in top.stdout and "status" in top.stdout
    run = sweep_cli("run", "--help", check=True)
    for group in ("optimizer", "schedule", "init", "data", "model", "cluster"):
        assert group in run.stdout


def test_cfg_job_prints_resolved_config_without_training(tmp_path):
    proc = sweep_cli("run", "--cfg", "job", "optimizer=adam", f"out_dir={tmp_path}", check=True)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["optimizer"]["name"] == "adam" and cfg["optimizer"]["betas"] == [0.9, 0.999]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer=adamm", "unknown optimizer 'adamm'; choices: adagrad, adam, adamw, anneal, custom, gd, momentum"),
        ("lr=fast", "invalid override lr=fast"),
        ("batch_size=-3", "batch_size=-3 is invalid: use a positive integer or 'full'"),
        ("batch_size=big", "batch_size='big' is invalid"),
        ("epochs=0", "epochs=0 is invalid: use a positive integer"),
        ("lr=-1", "lr=-1.0 is invalid"),
        (
            "sampling=random",
            "sampling='random' is unknown; choices: shuffle_each_epoch, shuffle_once, with_replacement",
        ),
        ("schedule=cosin", "unknown schedule 'cosin'; choices:"),
        ("optimizer.momentm=0.9", "unknown config key 'optimizer.momentm'"),
        ("optimizer=adam optimizer.momentum=0.9", "optimizer.momentum does not apply to optimizer=adam"),
        ("optimizer=gd batch_size=32", "optimizer=gd is full-batch gradient descent"),
        ("model.activation=swish", "model.activation='swish' is unknown"),
        ("data=mnist data.download=false data.cache_dir=empty", "run `sweep data fetch mnist` on a node with network"),
        ("schedule=onecycle schedule.pct_start=0.001 epochs=1", "schedule.pct_start=0.001 leaves no warm-up phase"),
        ("wandb.mode=loud", "wandb.mode='loud' is unknown"),
        ("seed=-1", "seed=-1 is invalid: use an integer with 0 <= seed < 2**63"),
        ("schedule=cosine schedule.gamma=0.5", "schedule.gamma does not apply to schedule=cosine; its knobs: min_lr"),
        pytest.param(
            "schedule=step schedule.step_size=1000 epochs=1",
            "schedule.step_size=1000 is at or beyond the end of the run",
        ),
        pytest.param(
            "schedule=warmup_cosine schedule.warmup_steps=1000 epochs=1",
            "schedule.warmup_steps=1000 is not shorter",
        ),
        (
            "name=../../escape",
            "name='../../escape' is invalid: a sweep name is a folder name under out_dir, not a path",
        ),
        ("name=${oc.env:HOME}", "name reads the environment (${oc.env:HOME})"),
        (
            "cluster=slurm",
            "cluster=slurm submits sweeps: add -m (`sweep run -m cluster=slurm ...`; a single config is "
            "an array of one)",
        ),
        ("cluster=dev", "cluster=dev submits sweeps: add -m"),
        ("cluster.timeout_min=-5", "cluster.timeout_min=-5 is invalid: use an integer >= 1"),
        (
            "cluster=slurm cluster.additional_parameters={hold:true}",
            "add new keys with a leading '+': +cluster.additional_parameters={hold:true}",
        ),
        ("sweeps=restarts", "add it with a leading '+': +sweeps=restarts"),
        ("wandb.tags=[日本]", "quote values with non-ASCII characters"),
        (  # a grid without -m: Hydra's own hint ('add --multirun') was cut by the rewording
            "lr=0.1,0.01",
            "lr=0.1,0.01 is a list of values: add -m to run one job each (sweep run -m lr=0.1,0.01), "
            "or write lr=[...] for a list value",
        ),
    ],
)
def test_bad_input_is_one_line_nonzero_exit_and_nothing_written(tmp_path, override, message):
    proc = sweep_cli("run", "wandb.mode=disabled", *override.split(), f"out_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sweep: error: ") and message in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["sweeps=restarts"], "add it with a leading '+': +sweeps=restarts"),
        (
            ["cluster.additional_parameters.hold=1,2"],
            "grid point [lr=0.1 cluster.additional_parameters.hold=1 ...]: 'cluster.additional_parameters.hold' is "
            "a new key of the dict cluster.additional_parameters: add new keys with a leading '+': "
            "+cluster.additional_parameters.hold=1; nothing was run or submitted",
        ),
        (
            ["optimizer.momentm=0.9,0.5"],
            "grid point [lr=0.1 optimizer.momentm=0.9 ...]: unknown config key 'optimizer.momentm'; check the spelling",
        ),
    ],
)
def test_a_bad_multirun_override_keeps_the_fix_hydra_offers(tmp_path, overrides, message):
    """-m composes grid points by a shortcut through Hydra's internals; its errors must still be Hydra's own."""
    proc = sweep_cli("run", "-m", "lr=0.1", *overrides, "wandb.mode=disabled", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    line = line.replace(" wandb.mode=disabled]", " ...]")
    assert line.startswith("sweep: error: ") and message in line, line
    assert not any(tmp_path.iterdir())


def test_bad_grid_point_fails_whole_multirun_before_training(tmp_path):
    proc = sweep_cli("run", "-m", "lr=0.1,fast", *FAST, f"out_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "lr=fast" in proc.stderr
    assert not list((tmp_path / "runs").rglob("summary.json"))  # no summary in any layout


def test_run_writes_results_and_resubmitting_skips(tmp_path):
    out = tmp_path / "runs"
    first = sweep_cli("run", "optimizer=adam", "lr=1e-2", *FAST, f"out_dir={out}", check=True)
    sweep_dir = out / "single"
    ((rid, rec),) = store.scan(sweep_dir).items()
    summary = rec.summary
    assert summary["status"] == "done" and summary["run_id"] == rid
    assert f"run {rid} done" in first.stdout
    cfg = rec.config
    assert cfg["optimizer"]["name"] == "adam" and cfg["lr"] == 1e-2 and cfg["name"] == "single"
    hist = store.history(sweep_dir, rid)
    assert {"step", "epoch", "lr_t", "train_loss", "grad_norm", "test_loss", "test_acc"} <= set(hist.columns)
    packs = sorted(store.packs_dir(sweep_dir).iterdir())
    mtime = rec.summary_path.stat().st_mtime_ns
    again = sweep_cli("run", "optimizer=adam", "lr=1e-2", *FAST, f"out_dir={out}", check=True)
    assert "already done" in again.stdout
    assert rec.summary_path.stat().st_mtime_ns == mtime  # nothing written again ...
    assert sorted(store.packs_dir(sweep_dir).iterdir()) == packs  # ... and no new pack


def test_multirun_grid_runs_locally_as_packs_and_records_the_sweep(tmp_path):
    out = tmp_path / "runs"
    proc = sweep_cli("run", "-m", "optimizer=sgd,adam", "lr=0.01,0.1", *FAST, f"out_dir={out}", check=True)
    assert "4 runs in 2 pack(s)" in proc.stdout  # sgd and adam cannot share a pack
    (sweep_dir,) = [p for p in out.iterdir() if p.name.startswith("sweep-")]
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert len(record["runs"]) == 4 and set(record["swept"]) == {"lr", "optimizer"}
    statuses = [store.summary(sweep_dir, r["run_id"])["status"] for r in record["runs"]]
    assert statuses == ["done"] * 4
    again = sweep_cli("run", "-m", "optimizer=sgd,adam", "lr=0.01,0.1", *FAST, f"out_dir={out}", check=True)
    assert sweep_dir.name in again.stdout  # the same grid continues the same sweep folder


def test_tab_completion_completes_groups_and_options():
    proc = sweep_cli("-sc", "query=bash", env={"COMP_LINE": "sweep run optimizer=ada", "COMP_POINT": "23"}, check=True)
    assert proc.stdout.split() == ["optimizer=adagrad", "optimizer=adam", "optimizer=adamw"]


def test_device_cuda_without_cuda_is_refused_before_running(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = sweep_cli("run", "device=cuda", *FAST, f"out_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "sweep: error: device=cuda but torch.cuda.is_available() is False here: use device=auto or cpu"
    )
    assert not (tmp_path / "runs").exists()


def test_refused_grid_writes_nothing_not_even_hydras_record(tmp_path):
    out = tmp_path / "runs"
    proc = sweep_cli("run", "-m", "data=spirals", "epochs=1", "seed=-1,0", f"out_dir={out}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "seed=-1 is invalid" in lines[0], proc.stderr
    assert not out.exists()  # no run folder, no sweep.json, no .hydra/multirun.yaml
    assert not any(tmp_path.iterdir())


def test_environment_values_in_a_grid_are_refused(tmp_path):
    proc = sweep_cli("run", "-m", "name=a,${oc.env:HOME}", *FAST, f"out_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "name reads the environment" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def mylab(tmp_path):
    """A user's own cluster profile in a --config-dir, as conf/cluster/slurm.yaml tells users to write one."""
    (tmp_path / "conf" / "cluster").mkdir(parents=True)
    (tmp_path / "conf" / "cluster" / "mylab.yaml").write_text(
        "defaults:\n  - local\n  - _self_\nname: mylab\nworkers: 2\n"
    )
    return tmp_path / "conf"


@pytest.mark.parametrize("order", ["flag_first", "flag_last"])
def test_config_dir_works_before_or_after_the_overrides(tmp_path, mylab, order):
    flags, overrides = ["--cfg", "job", "--config-dir", str(mylab)], ["cluster=mylab", "lr=0.5"]
    args = [*flags, *overrides] if order == "flag_first" else [overrides[0], *flags, overrides[1]]
    proc = sweep_cli("run", *args, f"out_dir={tmp_path / 'runs'}", check=True)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["cluster"]["name"] == "mylab" and cfg["cluster"]["workers"] == 2 and cfg["lr"] == 0.5


def test_documented_multirun_with_config_dir_last_runs(tmp_path, mylab):
    out = tmp_path / "runs"
    proc = sweep_cli(
        "run", "-m", "lr=0.05,0.1", *FAST, f"out_dir={out}", "--config-dir", str(mylab), "cluster=mylab", check=True
    )
    assert "2 runs" in proc.stdout
    (sweep_dir,) = [p for p in out.iterdir() if p.name.startswith("sweep-")]
    assert len(json.loads((sweep_dir / "sweep.json").read_text())["runs"]) == 2


def test_unquoted_unicode_name_is_accepted(tmp_path):
    proc = sweep_cli("run", "--cfg", "job", "name=日本語", check=True)
    assert yaml.safe_load(proc.stdout)["name"] == "日本語"


def test_version_and_python_dash_m_sweep():
    import subprocess
    import sys

    from sweep import __version__

    assert sweep_cli("--version", check=True).stdout.strip() == f"sweep {__version__}"
    p = subprocess.run([sys.executable, "-m", "sweep", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"sweep {__version__}"


def test_a_single_run_hands_hydra_its_validation_objective_never_a_test_metric(tmp_path):
    """With another launcher (`hydra/sweeper=optuna hydra/launcher=basic`) the sweeper optimizes what the app
    returns: once the test loss, now the configured objective (final_val_loss by default)."""
    from hydra import compose, initialize_config_module
    from store_helpers import summary

    from sweep import app
    from sweep.compose import resolved

    overrides = [f"out_dir={tmp_path}", "epochs=1", "model.hidden=[8]", "wandb.mode=disabled"]
    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
        value = app.run.__wrapped__(cfg)
        best = app.run.__wrapped__(compose(config_name="config", overrides=[*overrides, "objective=best_val_acc"]))
    s = summary(resolved(cfg))
    assert value == s["final_val_loss"] and value != s["final_test_loss"]
    assert best == s["best_val_acc"]


def test_a_malformed_yaml_in_config_dir_is_one_line(tmp_path):
    (tmp_path / "cd" / "cluster").mkdir(parents=True)
    (tmp_path / "cd" / "cluster" / "bad.yaml").write_text("name: [unclosed\n")
    p = sweep_cli("run", "--config-dir", str(tmp_path / "cd"), "cluster=bad", f"out_dir={tmp_path / 'runs'}")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith(f"sweep: error: cannot parse {tmp_path / 'cd' / 'cluster' / 'bad.yaml'}, line 2")
    assert "expected ',' or ']'" in p.stderr and not (tmp_path / "runs").exists()


def test_a_comma_list_holding_a_range_is_one_line_with_its_values(tmp_path):
    """Hydra's sweeper failed on `seed=range(0,3),7` with 'Unexpected type annotation: Set[str]; full_key: tags'."""
    p = sweep_cli("run", "-m", "seed=range(0,3),7", "epochs=1", f"out_dir={tmp_path / 'runs'}")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "seed=range(0,3),7: a comma list cannot hold range()" in p.stderr and "seed=0,1,2,7" in p.stderr
    assert not (tmp_path / "runs").exists()


def test_another_launcher_keeps_a_grid_in_one_named_sweep_folder(tmp_path):
    """`hydra/launcher=basic` ran each point as a single run named `single`: a grid mixed with every single
    run of that out_dir. Now the grid is named once, as sweep's launcher names it, and both points land there."""
    p = sweep_cli("run", "-m", "hydra/launcher=basic", "lr=0.1,0.2", "epochs=1", "model.hidden=[8]",
                  "wandb.mode=disabled", f"out_dir={tmp_path}")  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    (folder,) = [d for d in tmp_path.iterdir() if not d.name.startswith(".")]
    assert folder.name.startswith("sweep-") and folder.name != "single"
    assert sorted(r.config["lr"] for r in store.scan(folder).values()) == [0.1, 0.2]


@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir"])
def test_hydras_output_folder_is_refused_with_where_results_go(tmp_path, key):
    """`hydra.run.dir=...` was ignored without a word, and an empty folder appeared."""
    p = sweep_cli("run", f"{key}={tmp_path / 'h'}", "epochs=1", f"out_dir={tmp_path / 'runs'}")
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip() == (
        f"sweep: error: {key} is not where sweep writes: results go to out_dir/name/ (set out_dir=DIR and name=NAME)"
    )
    assert not (tmp_path / "h").exists() and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------------------ argv
@pytest.mark.parametrize(
    "args, flags, overrides",
    [
        (
            ["-m", "lr=1,2", "--config-dir", "D", "cluster=mylab"],
            ["-m", "--config-dir", "D"],
            ["lr=1,2", "cluster=mylab"],
        ),
        (
            ["-m", "--config-dir", "D", "lr=1,2", "cluster=mylab"],
            ["-m", "--config-dir", "D"],
            ["lr=1,2", "cluster=mylab"],
        ),
        (
            ["lr=1", "-cd", "D", "-cn", "config", "--cfg", "job", "x=1"],
            ["-cd", "D", "-cn", "config", "--cfg", "job"],
            ["lr=1", "x=1"],
        ),
        (["lr=1", "--config-dir=D", "x=1"], ["--config-dir=D"], ["lr=1", "x=1"]),
        (["--info", "lr=1"], ["--info"], ["lr=1"]),
        (["lr=1", "--info", "defaults"], ["--info", "defaults"], ["lr=1"]),
    ],
)
def test_split_flags_moves_hydra_flags_with_their_values_before_the_overrides(args, flags, overrides):
    from sweep.cli import split_flags

    assert split_flags(args) == (flags, overrides)


@pytest.mark.parametrize(
    "override, quoted",
    [
        ("name=日本語", "name='日本語'"),
        ("name=a,日本", "name=a,'日本'"),
        ("name='日本語'", "name='日本語'"),
        ("wandb.tags=[日本]", "wandb.tags=[日本]"),  # other grammar: left alone (the error says to quote it)
        ("lr=0.1", "lr=0.1"),
        ("+sweeps=restarts", "+sweeps=restarts"),
    ],
)
def test_quote_non_ascii_quotes_plain_unicode_values_only(override, quoted):
    from sweep.cli import quote_non_ascii

    assert quote_non_ascii(override) == quoted
