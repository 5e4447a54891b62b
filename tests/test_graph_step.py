"""The check a captured CUDA graph passes before a pack trusts it (`graph_step.replay_checked`): the step is
taken both ways from the same state, and only a replay equal to the plain step bit for bit is kept.

A CUDA graph cannot be captured on a CPU, so here the replay is a real step of the same pack taken another way
(the plain step again, or with a learning rate one part in 10^7 off); the `gpu` tests of test_engine_device.py check
the real captured graph."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST_PATH_PACK, make_cfg
from store_helpers import assert_same_histories, summary

from sweep.engine import Run, Trainer
from sweep.graph_step import replay_checked

COMMON = ["data=digits", "model.hidden=[16]", "batch_size=32", "wandb.mode=disabled", "epochs=1"]


def pack(tmp_path, optimizer: str, k: int = 3) -> Trainer:
    cfgs = [make_cfg(tmp_path, *COMMON, f"optimizer={optimizer}", f"lr={0.01 * (i + 1)}") for i in range(k)]
    runs = [Run(cfg=c, run_id=f"r{i}") for i, c in enumerate(cfgs)]
    t = Trainer(runs, 0, [None] * k, progress=False)
    idx = torch.arange(k * t.batch).view(k, t.batch) % t.data.x_train.shape[0]
    for _ in range(2):  # momentum buffers and step counts exist, as when a graph is captured
        t._step(idx, torch.full((k,), 0.01, dtype=t.dtype))
    return t


class Replay:
    """Stands in for a captured graph: `replay` is a real step of the pack, taken with lr * scale."""

    def __init__(self, trainer: Trainer, want_norm: bool, scale: float = 1.0) -> None:
        self.trainer, self.want_norm, self.scale, self.calls = trainer, want_norm, scale, 0

    def replay(self, idx, lr):
        self.calls += 1
        return self.trainer._step(idx, lr * self.scale, None, self.want_norm)


def snapshot(t: Trainer) -> list[torch.Tensor]:
    return [x.clone() for x in t.state.live_tensors()]


def same_bits(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.view(-1).view(torch.uint8), y.view(-1).view(torch.uint8)) for x, y in zip(a, b)
    )


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("want_norm", [False, True])
def test_a_replay_equal_to_the_plain_step_is_kept_and_the_pack_takes_one_step(tmp_path, optimizer, want_norm):
    t, ref = pack(tmp_path / "t", optimizer), pack(tmp_path / "ref", optimizer)
    idx = torch.arange(3 * t.batch).view(3, t.batch).flip(1)
    lr = torch.tensor([0.01, 0.02, 0.03], dtype=t.dtype)
    want_loss, want_norm_t = ref._step(idx, lr, None, want_norm)  # one plain step from the same state
    fake = Replay(t, want_norm)
    (loss, norm), problem = replay_checked(
        fake, lambda i, r: t._step(i, r, None, want_norm), idx, lr, t.state.live_tensors
    )
    assert problem is None and fake.calls == 1
    assert torch.equal(loss, want_loss) and (norm is None) == (not want_norm)
    if want_norm:
        assert torch.equal(norm, want_norm_t)
    assert same_bits(snapshot(t), snapshot(ref)), "the state must have taken exactly one step"
    if optimizer == "adam":  # the step count kept on the device is part of what is compared and restored
        assert any(x.ndim == 0 for x in t.state.live_tensors())


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_replay_one_part_in_ten_million_off_is_refused_and_the_plain_step_stands(tmp_path, optimizer):
    t, ref = pack(tmp_path / "t", optimizer), pack(tmp_path / "ref", optimizer)
    idx = torch.arange(3 * t.batch).view(3, t.batch)
    lr = torch.tensor([0.01, 0.02, 0.03], dtype=t.dtype)
    want_loss, _ = ref._step(idx, lr, None, False)
    fake = Replay(t, False, scale=1 + 1e-7)
    (loss, _), problem = replay_checked(fake, lambda i, r: t._step(i, r, None, False), idx, lr, t.state.live_tensors)
    assert fake.calls == 1
    assert problem is not None and "state tensor" in problem and "differs" in problem, problem
    assert torch.equal(loss, want_loss)
    assert same_bits(snapshot(t), snapshot(ref)), "the plain step's state must be the one kept"


def test_nan_weights_the_same_both_ways_agree(tmp_path):
    """A model that has diverged carries NaN: NaN where the plain step has NaN is the same step."""
    t = pack(tmp_path, "momentum")
    with torch.no_grad():
        t.state.params[0][1].fill_(float("nan"))
    idx = torch.arange(3 * t.batch).view(3, t.batch)
    lr = torch.full((3,), 0.01, dtype=t.dtype)
    (loss, _), problem = replay_checked(
        Replay(t, True), lambda i, r: t._step(i, r, None, True), idx, lr, t.state.live_tensors
    )
    assert problem is None and torch.isnan(loss[1]) and torch.isfinite(loss[[0, 2]]).all()


class CpuCapture:
    """CapturedStep's contract on the CPU (a real CUDA graph needs a GPU): `replay` runs the step it was given,
    `times` times (2: a wrong capture that steps twice)."""

    made = 0
    times = 1

    def __init__(self, step_fn, idx, lr, warmup) -> None:
        self.step_fn, self.shape = step_fn, tuple(idx.shape)
        warmup(idx)
        CpuCapture.made += 1

    def fits(self, idx) -> bool:
        return tuple(idx.shape) == self.shape

    def replay(self, idx, lr):
        for _ in range(self.times):
            out = self.step_fn(idx, lr)
        return out


@pytest.mark.parametrize("times", [1, 2])
def test_the_trainer_checks_each_captured_graph_and_refuses_a_wrong_one(tmp_path, monkeypatch, capsys, times):
    """The engine's graph path, run on the CPU with a stand-in for the CUDA graph: a pack with a model that
    diverges (so the graph is captured again for the rest) ends bit-identical to the plain step either way; a
    graph that is not the plain step is refused once, with one line, and the pack trains plain."""
    from sweep import engine
    from sweep.runner import train_runs
    from sweep.updaters import Functional

    common = [*FAST_PATH_PACK, "optimizer=adam"]
    lrs = (0.003, 0.01, 50.0)
    plain = [make_cfg(tmp_path / "plain", *common, f"lr={lr}") for lr in lrs]
    graph = [make_cfg(tmp_path / "graph", *common, f"lr={lr}") for lr in lrs]
    train_runs(plain, pack=3, progress=False)
    monkeypatch.setattr(Functional, "capturable", lambda self, device: self.compilable())
    monkeypatch.setattr(engine, "CapturedStep", CpuCapture)
    monkeypatch.setattr(CpuCapture, "times", times)
    monkeypatch.setattr(CpuCapture, "made", 0)
    train_runs(graph, pack=3, progress=False)
    err = capsys.readouterr().err
    assert err.count("not bit-identical to the plain step") == (times - 1), err
    assert CpuCapture.made == (4 if times == 1 else 1)  # 2 graphs (with and without norms), again after the drop
    statuses = [summary(c)["status"] for c in graph]
    assert statuses == ["done", "done", "diverged"]
    assert_same_histories(plain, graph)
