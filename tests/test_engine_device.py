"""Device placement is a rule of the engine: the state of the K models lives on the pack's device, with host
copies only at sync points. On a machine without a GPU the rule is checked on PyTorch's `meta` device (a device
other than the CPU, on which every shape-level operation runs); on CUDA the real thing runs (marked `gpu`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FAST_PATH_PACK, make_cfg, stop_after
from store_helpers import assert_same_histories, checkpoint, summary

from sweep.engine import Run, Trainer
from sweep.runner import train_runs

CUDA = torch.cuda.is_available()


def tensors_in(obj, path="state"):
    """(path, tensor) for every tensor reachable from obj's attributes, lists and dicts."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors_in(v, f"{path}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors_in(v, f"{path}[{i}]")
    elif hasattr(obj, "__dict__") and not isinstance(obj, (Run, torch.Generator, torch.optim.Optimizer)):
        for k, v in vars(obj).items():
            yield from tensors_in(v, f"{path}.{k}")


def off_device(state, device: torch.device) -> list[str]:
    return [f"{p} on {t.device}" for p, t in tensors_in(state) if t.device.type != device.type]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_pack_state_lives_on_the_pack_device_through_steps_and_drops(tmp_path, optimizer):
    cfgs = [
        dict(
            make_cfg(
                tmp_path,
                "epochs=1",
                "model.hidden=[8]",
                "wandb.mode=disabled",
                f"optimizer={optimizer}",
                f"lr={lr}",
                "data=spirals",
                "data.n_samples=100",
            ),
            device="meta",
        )
        for lr in (0.01, 0.02, 0.03)
    ]
    runs = [Run(cfg=c, run_id=f"r{i}") for i, c in enumerate(cfgs)]
    trainer = Trainer(runs, 0, [None] * 3, progress=False)
    meta = torch.device("meta")
    assert trainer.device == meta
    assert off_device(trainer.state, meta) == []
    idx = torch.zeros(3, 4, dtype=torch.long, device=meta)
    lr = torch.full((3,), 0.01, device=meta)
    trainer._step(idx, lr, np.full(3, 0.01), want_norm=True)
    assert off_device(trainer.state, meta) == []
    trainer.state.keep([0, 2])  # a model diverged: the others stay, still on the device
    assert len(trainer.state.runs) == 2 and off_device(trainer.state, meta) == []
    trainer._step(idx[:2], lr[:2], np.full(2, 0.01), want_norm=True)
    assert off_device(trainer.state, meta) == []


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_a_diverging_model_leaves_a_cuda_pack_and_the_others_finish(tmp_path, impl):
    common = [
        "epochs=3",
        "data=spirals",
        "data.n_samples=300",
        "model.hidden=[16]",
        "wandb.mode=disabled",
        "device=cuda",
        f"optimizer.impl={impl}",
        "optimizer=sgd",
    ]
    ok, bad = (make_cfg(tmp_path, f"lr={lr}", *common) for lr in (0.1, 50))
    train_runs([bad, ok], pack=2, progress=False)
    statuses = [summary(c)["status"] for c in (bad, ok)]
    assert statuses == ["diverged", "done"]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_a_stopped_cuda_pack_resumes_from_its_checkpoint_bit_identically(tmp_path, impl):
    from sweep.engine import Interrupted

    common = [
        "epochs=3",
        "model.hidden=[32]",
        "wandb.mode=disabled",
        "device=cuda",
        "optimizer=adam",
        f"optimizer.impl={impl}",
        "log_every=5",
        "checkpoint_every=10",
    ]
    ref = [make_cfg(tmp_path / "ref", *common, f"lr={lr}") for lr in (1e-3, 1e-2)]
    cut = [make_cfg(tmp_path / "cut", *common, f"lr={lr}") for lr in (1e-3, 1e-2)]
    train_runs(ref, pack=2, progress=False)
    with pytest.raises(Interrupted):
        train_runs(cut, pack=2, progress=False, should_stop=stop_after(6))
    again = train_runs(cut, pack=2, progress=False)
    for a, r in zip(again, ref):
        want = summary(r)
        assert a["status"] == "done" and 0 < a["resumed_from_step"] < a["total_steps"]
        assert a["final_train_loss"] == want["final_train_loss"] and a["final_test_loss"] == want["final_test_loss"]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_pack_auto_on_a_gpu_sizes_from_free_memory(tmp_path):
    from sweep.packing import auto_pack_size, bytes_per_model

    small = make_cfg(tmp_path, "model.hidden=[64,64]", "device=cuda")
    huge = make_cfg(tmp_path, "model.hidden=[8192,8192]", "device=cuda")
    free, _ = torch.cuda.mem_get_info()
    k_small, k_huge = auto_pack_size(small, 64, 10, 64), auto_pack_size(huge, 64, 10, 64)
    assert k_small == 1024  # the cap: tiny models all fit
    assert 1 <= k_huge < k_small and k_huge * bytes_per_model(huge, 64, 10, 64) <= free // 2


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad"])
def test_the_captured_cuda_step_is_bit_identical_to_the_plain_step(tmp_path, optimizer, monkeypatch, capsys):
    """The CUDA-graph step (sweep/graph_step.py) against the plain step, with a model diverging mid-way (the
    pack shrinks, the graph is captured again) and a smaller last batch per epoch (plain step there). Adam's,
    RMSprop's and Adagrad's step counts are device tensors advanced inside the graph."""
    common = [*FAST_PATH_PACK, "device=cuda", f"optimizer={optimizer}"]
    lrs = (0.05, 0.1, 50.0) if optimizer in ("sgd", "momentum", "nesterov") else (0.003, 0.01, 50.0)
    plain = [make_cfg(tmp_path / "plain", *common, f"lr={lr}", "cuda_graph=false") for lr in lrs]
    graph = [make_cfg(tmp_path / "graph", *common, f"lr={lr}") for lr in lrs]
    train_runs(plain, pack=3, progress=False)
    replays = count_replays(monkeypatch)
    train_runs(graph, pack=3, progress=False)
    assert replays["n"] > 10, "the graph was never replayed: the test compared the plain step with itself"
    assert "not bit-identical" not in capsys.readouterr().err  # the check at capture found no difference
    assert_same_histories(plain, graph)
    for a, b in zip(plain, graph):
        sa, sb = (summary(c) for c in (a, b))
        assert sa["status"] == sb["status"] and sa.get("diverged_step") == sb.get("diverged_step")
        if sa["status"] == "done":
            for x, y in zip(checkpoint(a)["params"], checkpoint(b)["params"], strict=True):
                assert torch.equal(x, y)
    assert summary(graph[2])["status"] == "diverged"


def count_replays(monkeypatch) -> dict:
    """Count CapturedStep.replay calls from now on."""
    from sweep.graph_step import CapturedStep

    seen, replay = {"n": 0}, CapturedStep.replay

    def counted(self, idx, lr):
        seen["n"] += 1
        return replay(self, idx, lr)

    monkeypatch.setattr(CapturedStep, "replay", counted)
    return seen


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_captured_step_that_is_not_the_plain_step_is_refused_and_the_pack_trains_plain(tmp_path, monkeypatch, capsys):
    """A graph whose replay differs from the plain step (here: it steps twice, as a wrong capture could) is
    checked at its first replay, refused with one line, and the pack ends exactly as with cuda_graph=false."""
    from sweep.graph_step import CapturedStep

    common = [*FAST_PATH_PACK, "device=cuda", "optimizer=adam"]
    plain = [make_cfg(tmp_path / "plain", *common, f"lr={lr}", "cuda_graph=false") for lr in (0.003, 0.01)]
    wrong = [make_cfg(tmp_path / "wrong", *common, f"lr={lr}") for lr in (0.003, 0.01)]
    train_runs(plain, pack=2, progress=False)
    replay = CapturedStep.replay
    monkeypatch.setattr(CapturedStep, "replay", lambda self, idx, lr: (replay(self, idx, lr), replay(self, idx, lr))[1])
    train_runs(wrong, pack=2, progress=False)
    err = capsys.readouterr().err
    assert err.count("the captured CUDA step is not bit-identical to the plain step") == 1, err
    assert_same_histories(plain, wrong)
