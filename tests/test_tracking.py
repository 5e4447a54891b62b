"""wandb with the real SDK, offline: one run per model with the right id, group, config, history and summary."""

from __future__ import annotations

import glob

from conftest import make_cfg, sweep_cli
from wandb_records import summarize

from sweep.config import run_id
from sweep.runner import run_dir_for, train_runs

SECRET = "0123456789abcdef0123456789abcdef01234567"


def _wandb_file(cfg) -> str:
    (path,) = glob.glob(str(run_dir_for(cfg).root / "wandb" / "offline-run-*" / "run-*.wandb"))
    return path


def test_offline_runs_of_a_pack_each_carry_their_own_config_history_and_summary(tmp_path):
    cfgs = [
        make_cfg(
            tmp_path,
            "epochs=2",
            "model.hidden=[16]",
            "wandb.mode=offline",
            f"lr={lr}",
            "name=grid",
            "wandb.tags=[demo]",
        )
        for lr in (0.05, 0.2)
    ]
    train_runs(cfgs, pack=2, progress=False)
    for cfg in cfgs:
        rec = summarize(_wandb_file(cfg))
        wandb_id = run_dir_for(cfg).wandb_id.read_text().strip()
        assert rec["run"] == {
            "id": wandb_id,
            "group": "grid",
            "job_type": "train",
            "tags": ["demo"],
            "name": run_id(cfg),
        }
        assert rec["config"]["lr"] == cfg["lr"] and rec["config"]["optimizer"]["name"] == "sgd"
        assert rec["config"]["run_id"] == run_id(cfg)
        assert rec["config"]["versions"]["torch"] and "commit" in rec["config"]["versions"]["git"]
        losses = [row["train_loss"] for row in rec["history"] if "train_loss" in row]
        assert len(losses) == __import__("pandas").read_parquet(run_dir_for(cfg).history).train_loss.notna().sum()
        assert rec["summary"]["status"] == "done" and rec["summary"]["run_id"] == run_id(cfg)


def test_wandb_ids_are_unique_per_sweep_stable_on_resume_and_runs_have_readable_names(tmp_path):
    """The same config in two sweeps (or two students' folders) must not land in one wandb run, and a resumed
    run must continue its own."""
    out = tmp_path / "runs"
    args = [
        "-m",
        "epochs=1",
        "model.hidden=[8]",
        "wandb.mode=offline",
        "optimizer=adam",
        "lr=0.01,0.03",
        "seed=2",
        f"out_dir={out}",
    ]
    sweep_cli("run", *args, "name=first", check=True)
    sweep_cli("run", *args, "name=second", check=True)
    ids, names = {}, set()
    for path in sorted(out.glob("*/*/wandb/offline-run-*/run-*.wandb")):
        rec = summarize(path)
        sweep, run = path.parts[-5], path.parts[-4]
        assert rec["run"]["id"] == (out / sweep / run / "wandb_id").read_text().strip()
        ids[(sweep, run)] = rec["run"]["id"]
        names.add(rec["run"]["name"])
    assert len(ids) == 4 and len(set(ids.values())) == 4, ids  # same run_id, different sweeps: different ids
    assert names == {"lr=0.01", "lr=0.03"}
    # the same sweep again: finished runs are skipped and the ids stay
    sweep_cli("run", *args, "name=first", check=True)
    assert {k: (out / k[0] / k[1] / "wandb_id").read_text().strip() for k in ids} == ids


def test_online_without_network_falls_back_to_offline_and_keeps_the_key_out_of_files(tmp_path):
    out = tmp_path / "runs"
    proc = sweep_cli(
        "run",
        "epochs=1",
        "model.hidden=[16]",
        "wandb.mode=online",
        "wandb.init_timeout_s=5",
        f"out_dir={out}",
        env={"WANDB_API_KEY": SECRET, "WANDB_MODE": None},
        timeout=120,
        check=True,
    )
    assert "unreachable" in proc.stderr or "falling back to offline" in proc.stderr
    assert "done" in proc.stdout
    assert glob.glob(str(out / "single" / "*" / "wandb" / "offline-run-*" / "run-*.wandb"))
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"API key leaked into {path}"
    assert SECRET not in proc.stdout + proc.stderr


def test_disabled_writes_no_wandb_files(tmp_path):
    cfg = make_cfg(tmp_path, "epochs=1", "model.hidden=[16]", "wandb.mode=disabled")
    train_runs([cfg], progress=False)
    assert not (run_dir_for(cfg).root / "wandb").exists()


def test_a_run_with_wandb_disabled_makes_no_wandb_id(tmp_path):
    """A run trained with tracking off has no wandb id (nothing to keep, and making one cost a fsynced file per
    run); in the same pack, a run that logs offline has its id."""
    off = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=disabled", "name=g")
    on = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=offline", "name=g", "seed=1")
    train_runs([off, on], pack=2, progress=False)
    assert not run_dir_for(off).wandb_id.exists()
    assert len(run_dir_for(on).wandb_id.read_text().strip()) == 8
