"""Resume is proven, not assumed: the second process must start from the checkpoint (a restart from scratch gives
the same bits, so bit-identity alone cannot tell them apart), and the checkpoint must hold the trained model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_cfg, stop_after
from store_helpers import checkpoint, history, record, rewrite_checkpoint, summary

from sweep.engine import Interrupted
from sweep.runner import train_runs
from sweep.store import HISTORY_FILE, SUMMARY_FILE, PackWriter

SMALL = ["model.hidden=[16]", "wandb.mode=disabled", "log_every=5", "checkpoint_every=10", "epochs=3"]
PROGRAMS = {
    "scratch": ["optimizer=adam", "lr=1e-2"],
    "torch": ["optimizer=adam", "lr=1e-2", "optimizer.impl=torch"],
    "anneal": ["optimizer=anneal", "lr=0.01", "optimizer.temperature=0.01"],
    "compiled": ["optimizer=adam", "lr=1e-2", "compile=true"],  # its steps, compiled again, round the same
}


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_a_stopped_run_resumes_from_its_checkpoint_and_ends_bit_identical(tmp_path, program, one_thread):
    args = [*SMALL, *PROGRAMS[program]]
    ref = make_cfg(tmp_path / "ref", *args)
    cut = make_cfg(tmp_path / "cut", *args)
    train_runs([ref], progress=False)
    with pytest.raises(Interrupted):
        train_runs([cut], progress=False, should_stop=stop_after(7))
    stopped_at = summary(cut)["step"]
    assert 0 < stopped_at < summary(ref)["total_steps"]
    (s,) = train_runs([cut], progress=False)
    assert s["status"] == "done"
    # the proof that it resumed: it started where the checkpoint was and trained only the rest
    assert s["resumed_from_step"] == stopped_at
    assert s["steps_this_process"] == s["total_steps"] - stopped_at
    assert summary(ref)["resumed_from_step"] == 0 and summary(ref)["steps_this_process"] == s["total_steps"]
    for key in ("final_train_loss", "final_test_loss", "final_test_acc"):
        assert s[key] == summary(ref)[key], key
    pd.testing.assert_frame_equal(history(ref), history(cut))
    for a, b in zip(checkpoint(ref)["params"], checkpoint(cut)["params"], strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_with_the_step_count_as_a_number_resumes_bit_identical(tmp_path, one_thread):
    """Checkpoints written before step counts lived on the device hold Adam's t as a Python int: such a
    checkpoint resumes into the device counter, and the run ends as if never stopped."""
    args = [*SMALL, "optimizer=adam", "lr=1e-2"]
    ref, cut = make_cfg(tmp_path / "ref", *args), make_cfg(tmp_path / "cut", *args)
    train_runs([ref], progress=False)
    with pytest.raises(Interrupted):
        train_runs([cut], progress=False, should_stop=stop_after(7))
    ck = checkpoint(cut)
    for layer in ck["opt_states"]:
        assert isinstance(layer["step"], torch.Tensor) and layer["step"].ndim == 0
        layer["step"] = int(layer["step"])  # as an older sweep wrote it
    rewrite_checkpoint(cut, ck)
    (s,) = train_runs([cut], progress=False)
    assert s["resumed_from_step"] == ck["step"] > 0
    pd.testing.assert_frame_equal(history(ref), history(cut))


def test_a_checkpoint_with_the_history_as_a_list_of_rows_resumes_bit_identical(tmp_path, one_thread):
    """Checkpoints hold the history as JSON text; those written before held it as a list of row dicts. Such a
    checkpoint resumes with its rows, and the run ends as if never stopped."""
    ref, cut = make_cfg(tmp_path / "ref", *SMALL), make_cfg(tmp_path / "cut", *SMALL)
    train_runs([ref], progress=False)
    with pytest.raises(Interrupted):
        train_runs([cut], progress=False, should_stop=stop_after(7))
    ck = checkpoint(cut)
    assert isinstance(ck["history"], str)
    ck["history"] = json.loads(ck["history"])  # as an older sweep wrote it
    assert ck["history"], "the stopped run should have logged rows before its checkpoint"
    rewrite_checkpoint(cut, ck)
    (s,) = train_runs([cut], progress=False)
    assert s["resumed_from_step"] == ck["step"] > 0
    pd.testing.assert_frame_equal(history(ref), history(cut))


def test_torch_impl_checkpoint_holds_the_trained_weights(tmp_path, one_thread):
    """torch.optim updates its own leaves: the checkpoint must save those, not the untrained stacked copy."""
    common = [*SMALL, "optimizer=adam", "lr=1e-2", "dtype=float64"]
    scratch = make_cfg(tmp_path / "a", *common)
    torch_impl = make_cfg(tmp_path / "b", *common, "optimizer.impl=torch")
    train_runs([scratch], progress=False)
    train_runs([torch_impl], progress=False)
    ps, pt = (checkpoint(c)["params"] for c in (scratch, torch_impl))
    for a, b in zip(ps, pt):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-9, atol=1e-12)


def test_finished_runs_record_their_speed_even_when_resumed_at_the_last_step(tmp_path, one_thread, monkeypatch):
    """A kill between the final checkpoint and the final summary leaves the pack's history and summary of the
    checkpoint before: the rerun resumes at the last step, trains nothing, and still records the speed."""
    before: list[dict[str, bytes]] = []  # the pack's history and summary as each checkpoint was about to land
    write_checkpoint = PackWriter.write_checkpoint

    def recording(self, step, models):
        before.append(
            {f: (self.root / f).read_bytes() for f in (HISTORY_FILE, SUMMARY_FILE) if (self.root / f).exists()}
        )
        write_checkpoint(self, step, models)

    monkeypatch.setattr(PackWriter, "write_checkpoint", recording)
    cfg = make_cfg(tmp_path, *SMALL)
    train_runs([cfg], progress=False)
    monkeypatch.setattr(PackWriter, "write_checkpoint", write_checkpoint)
    pack = record(cfg).pack
    assert len(before) >= 2 and set(before[-1]) == {HISTORY_FILE, SUMMARY_FILE}
    for name, data in before[-1].items():  # as if killed right after the final checkpoint landed
        (pack / name).write_bytes(data)
    assert summary(cfg)["status"] == "running"
    (again,) = train_runs([cfg], progress=False)
    assert again["status"] == "done"
    assert again["resumed_from_step"] == again["total_steps"] and again["steps_this_process"] == 0
    # the speed measured when it trained (kept in the checkpoint), not 0 samples / the start-up time
    assert again["samples_per_s"] == checkpoint(cfg)["samples_per_s"] > 0
