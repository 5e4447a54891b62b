"""`sweep show SWEEP RUN_ID`: one run as a person reads it, found by a prefix of its id."""

from __future__ import annotations

import json

from conftest import make_cfg, sweep_cli
from store_helpers import summary, where

from sweep.runner import train_runs


def test_show_prints_a_runs_config_summary_and_curve_and_json_for_programs(tmp_path):
    cfg = make_cfg(tmp_path, "epochs=2", "model.hidden=[8]", "wandb.mode=disabled", "lr=0.05")
    train_runs([cfg], progress=False)
    sweep_dir, rid = where(cfg)
    p = sweep_cli("show", str(sweep_dir), rid[:5], check=True)
    assert f"run {rid} in {sweep_dir}" in p.stdout and "status: done" in p.stdout
    assert "  lr: 0.05" in p.stdout and f"final_val_loss: {summary(cfg)['final_val_loss']}" in p.stdout
    assert "train loss " in p.stdout and " -> " in p.stdout
    shown = json.loads(sweep_cli("show", str(sweep_dir), rid, "--json", check=True).stdout)
    assert shown == {k: v for k, v in summary(cfg).items() if k != "traceback"}


def test_show_of_an_unknown_or_ambiguous_id_is_one_line(tmp_path):
    cfgs = [make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=disabled", f"lr={lr}") for lr in (0.1, 0.2)]
    train_runs(cfgs, pack=2, progress=False)
    sweep_dir = where(cfgs[0])[0]
    for prefix, says in (("zzz", "no run"), ("", "2 runs")):
        p = sweep_cli("show", str(sweep_dir), prefix)
        assert p.returncode == 2 and says in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_show_of_a_failed_run_prints_its_traceback(tmp_path):
    cfg = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=disabled")
    from store_helpers import stopped_at

    stopped_at(cfg, 3, b"not a checkpoint")
    (s,) = train_runs([cfg], progress=False)
    assert s["status"] == "failed"
    p = sweep_cli("show", str(where(cfg)[0]), where(cfg)[1], check=True)
    assert "status: failed" in p.stdout and "traceback:\nTraceback (most recent call last)" in p.stdout
