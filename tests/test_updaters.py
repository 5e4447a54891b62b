"""sweep.updaters: how a pack's models are updated (a student's class per model, with its numpy state; a
student's code under a time limit)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sweep.deadline import StepTimeout
from sweep.updaters import load_state_dict, time_limited


def test_load_state_dict_gives_back_numpy_state_as_it_was_saved():
    """torch's Optimizer.load_state_dict casts a numpy array as a sequence and fails; the state comes back whole."""
    p = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    opt.state[p].update(v=np.arange(3.0), t=np.int64(4), lr_seen=0.1)
    fresh = torch.zeros(3, requires_grad=True)
    other = torch.optim.SGD([fresh], lr=0.1)
    load_state_dict(other, opt.state_dict())
    state = other.state[fresh]
    np.testing.assert_array_equal(state["v"], np.arange(3.0))
    assert state["t"] == 4 and isinstance(state["t"], np.int64) and state["lr_seen"] == 0.1


def test_a_time_limited_step_that_hangs_raises_and_one_in_time_returns():
    class Slow:
        def __init__(self, wait: float) -> None:
            self.wait = wait

        def step(self, *args, **kwargs):
            threading.Event().wait(self.wait)
            return "stepped"

    cfgs = [{"step_timeout_s": 0.2, "optimizer": {"cls": "hw1.Slow"}}]
    assert time_limited(Slow(0.0), cfgs).step() == "stepped"
    with pytest.raises(StepTimeout, match=r"a step of optimizer.cls=hw1.Slow took longer than 0.2 s"):
        time_limited(Slow(30.0), cfgs).step()
