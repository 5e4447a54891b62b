"""Running a list of configs: claims, memory that runs out, and failures that stay local (the plan of packs:
tests/test_packing.py)."""

from __future__ import annotations

import json

import pytest
from conftest import make_cfg, stop_after
from store_helpers import ClaimHeld, record, summary, traceback_text

from sweep.engine import Interrupted
from sweep.runner import train_runs
from sweep.store import CHECKPOINT_FILE, RUNS_FILE

TINY = ["epochs=1", "model.hidden=[8]", "wandb.mode=disabled"]


def test_a_run_claimed_by_another_process_is_skipped(tmp_path):
    a, b = (make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2))
    with ClaimHeld(a):  # another trainer (a process of its own) holds run a
        sa, sb = train_runs([a, b], pack=2, progress=False)
    assert sa["status"] == "claimed" and record(a) is None  # nothing of run a was written
    assert sb["status"] == "done" and summary(b)["status"] == "done"


def test_a_failing_run_does_not_stop_its_pack(tmp_path):
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3)]
    with pytest.raises(Interrupted):  # run 1 stopped once: its pack holds a checkpoint it resumes from
        train_runs([cfgs[1]], progress=False, should_stop=stop_after(1))
    src = record(cfgs[1]).checkpoint_source()
    assert src is not None and src.pack is not None
    (src.pack / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")  # e.g. a disk that corrupted it
    results = train_runs(cfgs, pack=3, progress=False)
    assert [r["status"] for r in results] == ["done", "failed", "done"]
    s = summary(cfgs[1])
    assert s["status"] == "failed" and "UnpicklingError" in s["error"]
    assert "Traceback" in traceback_text(cfgs[1])
    assert all(summary(c)["pack_size"] == 3 for c in (cfgs[0], cfgs[2]))


def test_a_pack_too_large_for_memory_is_halved_until_it_fits(tmp_path, monkeypatch, capfd):
    """pack=auto estimates memory; where the device disagrees (an out-of-memory error), the pack splits instead
    of failing. The device's refusal is injected: packs of more than 2 models raise CUDA's OOM error."""
    import torch

    from sweep.engine import Trainer

    real_run = Trainer.run

    def run(self):
        if len(self.state.runs) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real_run(self)

    monkeypatch.setattr(Trainer, "run", run)
    cfgs = [make_cfg(tmp_path / "pack", *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3, 0.4, 0.5)]
    results = train_runs(cfgs, pack=5, progress=False)
    assert [r["status"] for r in results] == ["done"] * 5
    assert sorted(summary(c)["pack_size"] for c in cfgs) == [1, 2, 2, 2, 2]
    err = capfd.readouterr().err
    assert "a pack of 5 runs does not fit in memory; training it as packs of 3" in err
    monkeypatch.setattr(Trainer, "run", real_run)
    alone = make_cfg(tmp_path / "alone", *TINY, "lr=0.3")
    train_runs([alone], progress=False)
    assert summary(alone)["final_train_loss"] == results[2]["final_train_loss"]


def test_runs_of_a_pack_record_their_share_of_its_wall_time_not_all_of_it(tmp_path):
    """Summing wall_s over a sweep must give the device time it took, not K times a pack's wall."""
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3, 0.4)]
    train_runs(cfgs, pack=4, progress=False)
    s = [summary(c) for c in cfgs]
    assert len({x["pack_wall_s"] for x in s}) == 1  # one pack, one clock
    pack_wall = s[0]["pack_wall_s"]
    assert all(x["wall_s"] == s[0]["wall_s"] for x in s)  # nobody left early: equal shares
    assert 0 < 4 * s[0]["wall_s"] <= pack_wall  # a quarter each, not the pack's whole wall


def test_a_run_records_its_config_for_programs(tmp_path):
    """The pack's runs.json holds each member's resolved config (JSON, fast to parse: collect reads it), and the
    store reads it back as the run's config."""
    cfg = make_cfg(tmp_path, *TINY)
    train_runs([cfg], progress=False)
    rec = record(cfg)
    assert json.loads((rec.pack / RUNS_FILE).read_text()) == {rec.run_id: cfg}
    assert rec.config == cfg
