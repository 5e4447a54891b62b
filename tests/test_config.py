"""sweep.config's contract, tested on configs composed exactly as `sweep run` composes them (no subprocess):
what `validate` refuses (one line naming the key and the fix), what every stock preset accepts and
`check_schedule_fits`. run_id: tests/test_identity.py; compose: test_compose.py; errors: test_errors.py."""

from __future__ import annotations

import pytest
from conftest import REPO, make_cfg
from omegaconf import OmegaConf

from sweep.config import ConfigError, validate


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


def test_validate_accepts_plain_dicts_and_dictconfigs(tmp_path):
    c = make_cfg(tmp_path)
    validate(c)
    validate(OmegaConf.create(c))
