"""sweep.compose: the checks of one config on this machine (device, cluster), and the objective a job
returns to Hydra's sweeper."""

from __future__ import annotations

import pytest
from conftest import make_cfg
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from sweep.config import ConfigError, run_id


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
