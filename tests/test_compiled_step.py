"""`compile=true`: the pack's step compiled by torch.compile against the plain step (sweep/compiled_step.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST_PATH_PACK, make_cfg
from store_helpers import history, summary

from sweep.compiled_step import CompiledStep
from sweep.config import run_id
from sweep.runner import train_runs


@pytest.fixture
def compiled_calls(monkeypatch):
    """Each compiled step's outcome: True when it ran compiled, False when it fell back to the plain step."""
    calls: list[bool] = []
    original = CompiledStep.__call__

    def counting(self, idx, lr):
        out = original(self, idx, lr)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(CompiledStep, "__call__", counting)
    return calls


def train_both(tmp_path, optimizer: str, lrs: tuple[float, ...]) -> list[tuple[dict, dict]]:
    """(plain, compiled) config pairs, each set trained as one pack."""
    plain = [make_cfg(tmp_path / "plain", *FAST_PATH_PACK, f"optimizer={optimizer}", f"lr={lr}") for lr in lrs]
    comp = [
        make_cfg(tmp_path / "comp", *FAST_PATH_PACK, f"optimizer={optimizer}", f"lr={lr}", "compile=true") for lr in lrs
    ]
    train_runs(plain, pack=len(lrs), progress=False)
    train_runs(comp, pack=len(lrs), progress=False)
    return list(zip(plain, comp))


@pytest.mark.parametrize("optimizer,lrs", [("momentum", (0.05, 0.1, 50.0)), ("adam", (0.003, 0.01, 50.0))])
def test_a_compiled_pack_trains_as_the_plain_one_to_rounding(tmp_path, optimizer, lrs, compiled_calls):
    """The same statuses and divergence step (the pack shrinks mid-epoch: a recompile), and histories equal to
    float32 rounding; the compiled step really ran (fused kernels round differently, so not every bit agrees)."""
    pairs = train_both(tmp_path, optimizer, lrs)
    assert compiled_calls and all(compiled_calls), "the compiled step never ran or fell back"
    differ = 0
    for plain, comp in pairs:
        sp, sc = summary(plain), summary(comp)
        assert (sp["status"], sp.get("diverged_step")) == (sc["status"], sc.get("diverged_step"))
        # the same maths, so one identity (a resume may switch); the summary says which step trained
        assert run_id(plain) == run_id(comp)
        assert sp["steps_compiled"] == 0 < sc["steps_compiled"], sc
        assert sc["steps_plain"] + sc["steps_compiled"] + sc["steps_cuda_graph"] == sc["steps_this_process"]
        if sp["status"] != "done":
            continue
        hp, hc = history(plain), history(comp)
        assert list(hp.columns) == list(hc.columns) and list(hp.step) == list(hc.step)
        for col in ("train_loss", "val_loss", "test_loss", "grad_norm"):
            np.testing.assert_allclose(hc[col], hp[col], rtol=2e-5, equal_nan=True, err_msg=col)
        differ += int((hc.train_loss != hp.train_loss).sum())
    assert summary(pairs[-1][0])["status"] == "diverged"
    assert differ > 0, "every compiled value equals the plain one bit for bit: was the step compiled at all?"


def test_without_a_compiler_the_pack_trains_plain_and_says_so(tmp_path, monkeypatch, capfd, compiled_calls):
    """A compute node with no C++ compiler: compiling fails before the step runs, the pack says so in one line
    and trains with the plain step, bit for bit as without compile=true."""
    import torch._inductor.config as inductor

    torch._dynamo.reset()
    monkeypatch.setattr(inductor, "fx_graph_cache", False)  # no cached kernels: a compiler is needed
    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    pairs = train_both(tmp_path, "momentum", (0.05, 0.1))
    torch._dynamo.reset()
    assert compiled_calls and not any(compiled_calls)
    err = capfd.readouterr().err
    assert err.count("compile=true: torch.compile failed") == 1, err
    for plain, comp in pairs:
        pd.testing.assert_frame_equal(history(plain), history(comp))
