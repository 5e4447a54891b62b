"""sweep.config's contract, tested on configs composed exactly as `sweep run` composes them (no subprocess):
what `validate` refuses (one line naming the key and the fix), what every stock preset accepts, what `run_id`
depends on, `check_schedule_fits`, and the argv/error helpers of sweep.cli and sweep.errors."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import REPO, make_cfg
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from sweep.config import ConfigError, run_id, semantic_config, validate


def _refused(tmp_path, overrides: str) -> str:
    """The one-line message `make_cfg` (compose + validate) raises for `overrides`."""
    with pytest.raises(Exception) as info:
        make_cfg(tmp_path, *overrides.split())
    from sweep.errors import one_line

    msg = one_line(info.value)
    assert msg is not None and "\n" not in msg, info.value
    return msg


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "overrides, message",
    [
        # values torch would train on, to nonsense
        ("schedule=step schedule.gamma=-2", "schedule.gamma=-2.0 is invalid: use gamma > 0"),
        ("schedule=exponential schedule.gamma=0", "schedule.gamma=0.0 is invalid"),
        ("schedule=inverse_time schedule.decay=-0.5", "schedule.decay=-0.5 is invalid: use decay >= 0"),
        ("schedule=onecycle schedule.div_factor=0", "schedule.div_factor and schedule.final_div_factor must be > 0"),
        ("schedule=onecycle schedule.pct_start=1.5", "schedule.pct_start=1.5 is invalid: use 0 < pct_start < 1"),
        ("schedule=exponential schedule.gamma=nan", "schedule.gamma=nan is invalid: use a finite number"),
        ("optimizer=adagrad optimizer.lr_decay=-1", "optimizer.lr_decay=-1.0 is invalid: use lr_decay >= 0"),
        ("optimizer.dampening=5", "optimizer.dampening=5.0 is invalid: use 0 <= dampening <= 1"),
        ("optimizer.dampening=-0.1", "optimizer.dampening=-0.1 is invalid"),
        (
            "optimizer=sgd optimizer.dampening=0.5",
            "optimizer.dampening=0.5 has no effect without momentum (optimizer.momentum=0): remove it, or set "
            "optimizer.momentum > 0",
        ),
        (
            "optimizer=adagrad optimizer.initial_accumulator_value=-1",
            "optimizer.initial_accumulator_value=-1.0 is invalid: use initial_accumulator_value >= 0",
        ),
        ("optimizer=adam optimizer.eps=nan", "optimizer.eps=nan is invalid: use a finite number"),
        ("optimizer=rmsprop optimizer.momentum=inf", "optimizer.momentum=inf is invalid: use a finite number"),
        ("lr=inf", "lr=inf is invalid: use a positive finite float"),
        ("lr=nan", "lr=nan is invalid: use a positive finite float"),
        ("init.scale=nan", "init.scale=nan is invalid: use a finite scale >= 0"),
        ("init.scale=-1", "init.scale=-1.0 is invalid"),
        ("init=normal init.std=-1", "init.std=-1.0 is invalid: use a finite std > 0"),
        ("init=normal init.std=0", "init.std=0.0 is invalid"),
        ("init.bias=inf", "init.bias=inf is invalid: use a finite number"),
        ("seed=-1", "seed=-1 is invalid: use an integer with 0 <= seed < 2**63"),
        ("seed=9223372036854775808", "seed=9223372036854775808 is invalid"),
        # cluster resources a scheduler would misread
        ("cluster=slurm cluster.timeout_min=-5", "cluster.timeout_min=-5 is invalid: use an integer >= 1"),
        ("cluster=slurm cluster.timeout_min=0", "cluster.timeout_min=0 is invalid"),
        ("cluster=slurm cluster.cpus_per_task=0", "cluster.cpus_per_task=0 is invalid: use an integer >= 1"),
        ("cluster=slurm cluster.gpus_per_node=-1", "cluster.gpus_per_node=-1 is invalid: use an integer >= 0"),
        ("cluster=slurm cluster.mem_gb=0", "cluster.mem_gb=0.0 is invalid: use a number of GB > 0, or null"),
        ("cluster=slurm cluster.array_parallelism=0", "cluster.array_parallelism=0 is invalid: use an integer >= 1"),
        ("cluster=slurm cluster.max_num_timeout=-1", "cluster.max_num_timeout=-1 is invalid: use an integer >= 0"),
        ("cluster.workers=0", "cluster.workers=0 is invalid: use an integer >= 1"),
        # knobs the chosen schedule / init does not read: they changed run_id and nothing else
        ("schedule=cosine schedule.gamma=0.5", "schedule.gamma does not apply to schedule=cosine; its knobs: min_lr"),
        ("schedule.step_size=10", "schedule.step_size does not apply to schedule=constant; its knobs: none"),
        (
            "schedule=step schedule.min_lr=0.01",
            "schedule.min_lr does not apply to schedule=step; its knobs: step_size, gamma",
        ),
        ("schedule=onecycle schedule.warmup_steps=5", "schedule.warmup_steps does not apply to schedule=onecycle"),
        ("init.std=0.5", "init.std does not apply to init=lecun_normal; its knobs: scale, bias"),
        ("init=zeros init.scale=2", "init.scale does not apply to init=zeros; its knobs: bias"),
        # names are folder names, not paths
        (
            "name=../../escape",
            "name='../../escape' is invalid: a sweep name is a folder name under out_dir, not a path",
        ),
        ("name=/abs/path", "name='/abs/path' is invalid"),
        ("name=a\\\\b", "is invalid: a sweep name is a folder name"),
        ("name=.hidden", "name='.hidden' is invalid"),
        ("name=..", "name='..' is invalid"),
        ("name=''", "name='' is invalid"),
        ("name='a\x1b[31mb'", "is invalid: a sweep name is a folder name"),  # a terminal escape
        # what a multirun returns to Hydra's sweeper: chosen on validation, never on test
        (
            "objective=final_test_loss",
            "objective='final_test_loss' is not allowed (a choice made on test leaks the test set into it); "
            "choices: final_val_loss, best_val_loss, final_val_acc, best_val_acc, final_train_loss",
        ),
        ("objective=val_loss", "objective='val_loss' is not allowed; choices: final_val_loss"),
        # Hydra's `~key` removes a key: every run reads it
        ("~lr", "lr is missing (removed with ~lr?): every run needs it; set a value"),
        ("~wandb", "wandb is missing (removed with ~wandb?)"),
    ],
)
def test_validate_refuses_with_one_line(tmp_path, overrides, message):
    msg = _refused(tmp_path, overrides)
    assert message in msg, msg


@pytest.mark.parametrize(
    "key, override",
    [
        ("name", "name=${oc.env:HOME}"),
        ("name", "name=run-${oc.env:HOME,x}"),
        ("wandb.project", "wandb.project=${oc.env:HOME}"),
        ("wandb.entity", "wandb.entity=${oc.env:HOME}"),
        ("wandb.tags[0]", "wandb.tags=[${oc.env:HOME}]"),
        ("out_dir", "out_dir=${oc.env:HOME}"),
    ],
)
def test_environment_interpolation_is_refused_in_values_that_are_written(tmp_path, key, override):
    with pytest.raises(Exception) as info:
        make_cfg(tmp_path / "runs", override)  # out_dir=... given last wins over make_cfg's
    from sweep.errors import one_line

    msg = one_line(info.value)
    assert msg is not None and msg.startswith(f"{key} reads the environment (${{oc.env:HOME"), msg
    assert "\n" not in msg


def test_environment_interpolation_is_allowed_in_cluster_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_TEST_VENV", "/opt/venv")
    c = make_cfg(tmp_path, "cluster=slurm", "cluster.setup=['source ${oc.env:SWEEP_TEST_VENV}/bin/activate']")
    assert c["cluster"]["setup"] == ["source /opt/venv/bin/activate"]


@pytest.mark.parametrize(
    "override, key",
    [
        ("wandb.project=KEY", "wandb.project"),
        ("name=run-KEY", "name"),
        ("wandb.tags=[a,KEY]", "wandb.tags[1]"),
    ],
)
def test_a_value_holding_the_wandb_api_key_is_refused_without_echoing_it(tmp_path, monkeypatch, override, key):
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    with pytest.raises(ConfigError) as info:
        make_cfg(tmp_path, override.replace("KEY", secret))
    assert str(info.value).startswith(f"{key} contains the value of the environment variable WANDB_API_KEY")
    assert secret not in str(info.value)


def test_the_wandb_api_key_may_appear_in_cluster_setup(tmp_path, monkeypatch):
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    make_cfg(tmp_path, "cluster=slurm", f"cluster.setup=['export WANDB_API_KEY={secret}']")


@pytest.mark.parametrize("name", ["my-sweep_1", "日本語", "lr 0.1", "a.b", "sweep-20260101-120000"])
def test_ordinary_names_are_accepted(tmp_path, name):
    assert make_cfg(tmp_path, f"name='{name}'")["name"] == name


# ------------------------------------------------------------------------------------------------ presets
def _presets() -> list[str]:
    return sorted(f"{p.parent.name}={p.stem}" for p in (REPO / "conf").glob("*/*.yaml") if p.parent.name != "sweeps")


@pytest.mark.parametrize("choice", _presets())
def test_every_stock_preset_composes_and_validates(tmp_path, choice):
    """Presets set their own knobs only (e.g. schedule=step sets gamma): none may trip the knob checks."""
    c = make_cfg(tmp_path, choice, *(["optimizer.cls=torch.optim.SGD"] if choice == "optimizer=custom" else []))
    group, option = choice.split("=")
    if group in ("optimizer", "schedule", "init", "data"):
        assert c[group]["name"] == option


@pytest.mark.parametrize(
    "schedule", ["constant", "step", "exponential", "inverse_time", "cosine", "warmup_cosine", "linear", "onecycle"]
)
def test_every_schedule_preset_fits_the_default_run(tmp_path, schedule):
    from sweep.config import check_schedule_fits

    c = make_cfg(tmp_path, f"schedule={schedule}")
    check_schedule_fits(c, 20 * 21)  # digits (1,294 training examples), batch 64, 20 epochs


# ------------------------------------------------------------------------------------------------ run length
@pytest.mark.parametrize(
    "overrides, total, message",
    [
        (
            "schedule=warmup_cosine schedule.warmup_steps=50",
            50,
            "schedule.warmup_steps=50 is not shorter than the run (50 steps)",
        ),
        ("schedule=warmup_cosine schedule.warmup_steps=500", 23, "use warmup_steps < 23"),
        (
            "schedule=step schedule.step_size=23 schedule.ticks_per_run=0",
            23,
            "schedule.step_size=23 is at or beyond the end of the run (23 steps)",
        ),
        (
            "schedule=step schedule.step_size=200 schedule.ticks_per_run=0",
            100,
            "schedule.step_size=200 is at or beyond the end of the run",
        ),
        ("schedule=onecycle schedule.pct_start=0.001", 23, "schedule.pct_start=0.001 leaves no warm-up phase"),
    ],
)
def test_check_schedule_fits_refuses_schedules_longer_than_the_run(tmp_path, overrides, total, message):
    from sweep.config import check_schedule_fits

    c = make_cfg(tmp_path, *overrides.split())
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_schedule_fits(c, total)


@pytest.mark.parametrize(
    "overrides, total",
    [
        ("schedule=warmup_cosine schedule.warmup_steps=50", 51),
        ("schedule=step schedule.step_size=22", 23),
        ("schedule=constant", 1),
        ("schedule=step schedule.step_size=1000 schedule.ticks_per_run=0", 2000),
    ],
)
def test_check_schedule_fits_accepts_schedules_that_fit(tmp_path, overrides, total):
    from sweep.config import check_schedule_fits

    check_schedule_fits(make_cfg(tmp_path, *overrides.split()), total)


# ------------------------------------------------------------------------------------------------ identity
def test_run_id_does_not_depend_on_where_the_data_is(tmp_path):
    a = make_cfg(tmp_path, "data=mnist", "data.root=/datasets/mnist")
    b = make_cfg(tmp_path, "data=mnist", "data.root=/scratch/me/mnist")
    assert run_id(a) == run_id(b)
    c = make_cfg(tmp_path, "data=mnist1d", "data.cache_dir=/tmp/a")
    d = make_cfg(tmp_path, "data=mnist1d", "data.cache_dir=/tmp/b")
    assert run_id(c) == run_id(d)
    assert run_id(a) != run_id(make_cfg(tmp_path, "data=fashion_mnist", "data.root=/datasets/mnist"))
    # how the files are fetched is not what they are (they are checksummed): a course mirror, or no download
    e = make_cfg(tmp_path, "data=mnist", "data.mirror=http://course.example/mnist/", "data.download=false")
    assert run_id(e) == run_id(make_cfg(tmp_path, "data=mnist"))


def test_run_id_of_a_config_without_paths_is_what_it_was(tmp_path):
    """Blanking paths must not move the results of existing runs (their paths were null): same hash as before."""
    c = make_cfg(tmp_path, "optimizer=adam", "lr=1e-3")
    # keys added since (choices, cuda_graph, objective...) are not semantic: configs written before them keep their id
    old = {
        k: v
        for k, v in c.items()
        if k
        not in (
            "name",
            "out_dir",
            "wandb",
            "cluster",
            "pack",
            "device",
            "log_every",
            "checkpoint_every",
            "hydra",
            "choices",
            "cuda_graph",
            "compile",
            "objective",
            "objective_if_failed",
            "search",
            "step_timeout_s",
        )
    }
    old["optimizer"] = {
        k: v for k, v in old["optimizer"].items() if k not in ("cls", "kwargs", "code", "relative_temperature")
    }
    old["schedule"] = {k: v for k, v in old["schedule"].items() if k != "ticks_per_run"}
    old["data"] = {k: v for k, v in old["data"].items() if k not in ("mirror", "download")}
    blob = json.dumps(old, sort_keys=True, separators=(",", ":"), default=str)
    assert run_id(c) == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert semantic_config(c)["data"]["root"] is None


# ------------------------------------------------------------------------------------------------ app checks
def test_device_cuda_is_refused_here_without_cuda_but_not_for_slurm(tmp_path, monkeypatch):
    import torch

    from sweep.compose import check_device_here

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ConfigError,
        match=r"device=cuda but torch.cuda.is_available\(\) is False here: use "
        "device=auto or cpu",
    ):
        make_cfg(tmp_path, "device=cuda")
    with pytest.raises(ConfigError, match="device=cuda:1 but"):
        check_device_here({"device": "cuda:1", "cluster": {"backend": "local"}})
    assert make_cfg(tmp_path, "device=cuda", "cluster=slurm")["device"] == "cuda"  # the compute node decides
    assert make_cfg(tmp_path, "device=auto")["device"] == "auto"


@pytest.mark.parametrize("cluster", ["slurm", "dev", "example_gpu"])
def test_a_single_run_with_a_slurm_cluster_is_refused(cluster):
    from sweep.compose import refuse_cluster_without_multirun

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"cluster={cluster}"])
    with pytest.raises(
        ConfigError,
        match=f"cluster={cluster} submits sweeps: add -m "
        rf"\(`sweep run -m cluster={cluster} ...`",
    ):
        refuse_cluster_without_multirun(cfg)


def test_a_single_run_on_the_local_cluster_is_not_refused():
    from sweep.compose import refuse_cluster_without_multirun

    refuse_cluster_without_multirun(OmegaConf.create({"cluster": {"name": "local", "backend": "local"}}))


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "override, message",
    [
        (
            "cluster.additional_parameters={hold:true}",
            "add new keys with a leading '+': +cluster.additional_parameters={hold:true}",
        ),
        ("cluster.additional_parameters.hold=true", "+cluster.additional_parameters.hold=true"),
        (
            "sweeps=restarts",
            "unknown config key 'sweeps': 'sweeps' is a config group that is not chosen by default; "
            "add it with a leading '+': +sweeps=restarts",
        ),
        ("optimizer.momentm=0.9", "unknown config key 'optimizer.momentm'; check the spelling"),
        (
            "+lr=0.2",
            "An item is already at 'lr'.; Either remove + prefix: 'lr=0.2'; "
            "Or add a second + to add or override 'lr': '++lr=0.2'",
        ),
    ],
)
def test_composition_errors_keep_hydras_fix(override, message):
    import sweep.compose  # noqa: F401  (registers the schema)
    from sweep.errors import one_line

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"), pytest.raises(Exception) as info:
        compose(config_name="config", overrides=[override])
    msg = one_line(info.value)
    assert msg is not None and message in msg and "\n" not in msg, msg


@pytest.mark.parametrize(
    "fix", ["+cluster.additional_parameters={hold:true}", "+cluster.additional_parameters.hold=true"]
)
def test_the_suggested_fix_for_additional_parameters_works(tmp_path, fix):
    assert make_cfg(tmp_path, "cluster=slurm", fix)["cluster"]["additional_parameters"] == {"hold": True}


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


def test_validate_accepts_plain_dicts_and_dictconfigs(tmp_path):
    c = make_cfg(tmp_path)
    validate(c)
    validate(OmegaConf.create(c))


# ------------------------------------------------------------------------------------------------ one home
def test_user_errors_are_one_family_defined_in_sweep_errors():
    import sweep.config
    import sweep.data
    from sweep import errors

    assert sweep.data.DataError is errors.DataError and sweep.config.ConfigError is errors.ConfigError
    for kind in (errors.ConfigError, errors.DataError):
        assert issubclass(kind, errors.UserError) and issubclass(kind, ValueError)
        assert errors.one_line(kind("what was wrong: what to do")) == "what was wrong: what to do"


def test_reworded_keeps_the_line_and_lets_bugs_through():
    from sweep.data import DataError
    from sweep.errors import reworded

    with (
        pytest.raises(ConfigError, match=r"^point \[a\]: no file; nothing ran$"),
        reworded("point [a]: ", "; nothing ran"),
    ):
        raise DataError("no file")
    with pytest.raises(KeyError), reworded("point: "):
        raise KeyError("a bug keeps its type and traceback")


def test_nothing_imports_the_entry_point_and_hydra_is_not_patched():
    """sweep.app is the Hydra entry point: only sweep.cli may import it (an import loop ran app -> hydra plugin
    -> sweep.launch -> sweep.app); and sweep reports Hydra's errors without replacing Hydra's functions."""
    import ast

    import hydra._internal.utils as hydra_utils

    importers = []
    for path in [*(REPO / "sweep").rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n == "sweep.app" or (n or "").startswith("sweep.app.") for n in names):
                importers.append(path.relative_to(REPO).as_posix())
    assert importers == ["sweep/cli.py"]
    import sweep.app  # noqa: F401

    assert hydra_utils.run_and_report.__module__ == "hydra._internal.utils"


# ------------------------------------------------------------------------------------------------ objective
@pytest.mark.parametrize(
    "summary, expected",
    [
        ({"status": "done", "final_val_loss": 0.25}, 0.25),
        ({"status": "done", "final_val_loss": 1}, 1.0),
        ({"status": "diverged", "final_val_loss": None}, 7.0),
        ({"status": "collapsed", "final_val_loss": 2.5}, 7.0),  # blew up and never recovered: no result
        ({"status": "done", "final_val_loss": None}, 7.0),
        ({"status": "done", "final_val_loss": float("nan")}, 7.0),
        ({"status": "queued"}, "nan"),  # no result yet (SLURM without cluster.wait)
        ({"status": "claimed", "skipped": True}, "nan"),
    ],
)
def test_objective_value_is_always_a_float(summary, expected):
    import math

    from sweep.compose import objective_value

    value = objective_value({"objective": "final_val_loss", "objective_if_failed": 7.0}, summary)
    assert type(value) is float
    assert math.isnan(value) if expected == "nan" else value == expected


def test_objective_keys_do_not_change_run_id(tmp_path):
    base = make_cfg(tmp_path)
    assert base["objective"] == "final_val_loss" and base["objective_if_failed"] == float("inf")
    other = make_cfg(tmp_path, "objective=best_val_acc", "objective_if_failed=-1")
    assert run_id(other) == run_id(base)


def test_an_accuracy_objective_on_a_regression_task_is_refused(tmp_path):
    from sweep.preflight import check_data

    with pytest.raises(ConfigError, match="objective=final_val_acc but data=teacher is a regression task"):
        check_data([make_cfg(tmp_path, "data=teacher", "objective=final_val_acc")])
    check_data([make_cfg(tmp_path, "data=teacher", "objective=final_val_loss")])
