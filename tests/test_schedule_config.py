"""The schedule's clock (`schedule.ticks_per_run`) in the config: stock presets sized to the run (step halves every
3 epochs, inverse_time is 1/t per epoch, whatever the batch size), the knob refused where it does not apply or is
out of range, and `check_schedule_fits` counting ticks."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from sweep.config import SCHEDULE_KNOBS, ConfigError, check_schedule_fits, validate
from sweep.schedule import lr_table


def cfg(*overrides: str) -> dict:
    from sweep.compose import resolved  # registers the schema

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"):
        return resolved(compose(config_name="config", overrides=list(overrides)))


def test_the_knob_applies_to_the_schedules_with_a_clock():
    assert {n for n, k in SCHEDULE_KNOBS.items() if "ticks_per_run" in k} == {"step", "exponential", "inverse_time"}


@pytest.mark.parametrize("batch, spe", [(64, 21), (16, 81)])
def test_stock_step_halves_every_3_epochs_whatever_the_batch(batch, spe):
    c = cfg("schedule=step", "epochs=10", f"batch_size={batch}")
    s = c["schedule"]
    assert s["ticks_per_run"] == 10 and s["step_size"] == 3 and s["gamma"] == 0.5
    total = 10 * spe
    check_schedule_fits(c, total)
    lr = lr_table("step", [3 * spe - 1, 3 * spe, 6 * spe], [1.0], total, {k: [v] for k, v in s.items()})[:, 0]
    assert lr.tolist() == [1.0, 0.5, 0.25]


def test_stock_inverse_time_is_one_over_t_per_epoch():
    c = cfg("schedule=inverse_time", "epochs=5")
    s = c["schedule"]
    lr = lr_table("inverse_time", [0, 21, 42, 104], [1.0], 5 * 21, {k: [v] for k, v in s.items()})[:, 0]
    assert lr.tolist() == pytest.approx([1.0, 1 / 2, 1 / 3, 1 / (1 + 104 / 21)], rel=1e-15)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["schedule=cosine", "schedule.ticks_per_run=10"], "schedule.ticks_per_run does not apply to schedule=cosine"),
        (["schedule=step", "schedule.ticks_per_run=-1"], "schedule.ticks_per_run=-1 is invalid"),
    ],
)
def test_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(cfg(*overrides))


def test_check_schedule_fits_counts_ticks():
    c = cfg("schedule=step", "epochs=3")  # 3 epochs: a decay every 3 epochs never happens
    with pytest.raises(
        ConfigError,
        match=r"schedule.step_size=3 is at or beyond the end of the run \(63 steps\), counted in ticks of 21 steps ",
    ):
        check_schedule_fits(c, 3 * 21)
    check_schedule_fits(cfg("schedule=step", "epochs=4"), 4 * 21)
    with pytest.raises(ConfigError, match="ticks_per_run=50 is more ticks than the run has steps"):
        check_schedule_fits(cfg("schedule=step", "schedule.ticks_per_run=50", "schedule.step_size=1"), 40)
