"""sweep.device: how many CPU threads a process takes (the tightest of affinity, cgroup quota and SLURM's
allocation, shared by the workers), and that a run's provenance says so. The engine's device rule (a pack's
state on its device): tests/test_engine_device.py."""

from __future__ import annotations

from conftest import make_cfg


def test_threads_follow_the_tightest_cpu_limit_and_the_workers_sharing_it(tmp_path):
    from sweep.device import cgroup_cpu_quota, choose_threads

    assert choose_threads(1, affinity=16, quota=None, slurm=None) == (16, "16 of 16 CPUs (affinity)")
    assert choose_threads(1, affinity=16, quota=2.5, slurm=None) == (2, "2 of 2 CPUs (cgroup quota)")
    assert choose_threads(2, affinity=16, quota=None, slurm=8)[0] == 4
    assert choose_threads(4, affinity=2, quota=None, slurm=8) == (1, "1 of 2 CPUs (affinity) shared by 4 workers")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(str(tmp_path)) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(str(tmp_path)) is None


def test_a_runs_provenance_says_how_many_threads_it_trained_with(tmp_path):
    import torch
    from store_helpers import summary

    from sweep.runner import train_runs

    cfg = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=disabled")
    train_runs([cfg], progress=False, workers=2)
    threads = summary(cfg)["versions"]["threads"]
    assert threads.startswith(f"{torch.get_num_threads()} of ") and "shared by 2 workers" in threads
