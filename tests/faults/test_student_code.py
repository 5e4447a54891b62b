"""Faults of a student's optimizer code (issue: faults survived, round three): a fixed optimizer must train anew,
state a checkpoint cannot hold must still resume, and code that hangs must fail its own runs, said, while the
rest of the grid trains. Each test is an attack that once broke `sweep`; each fails if its fix is taken out."""

from __future__ import annotations

import sys
import textwrap

import pytest
from conftest import make_cfg, stop_after, sweep_cli
from store_helpers import assert_same_histories

from sweep import store
from sweep.config import run_id as store_id
from sweep.engine import Interrupted
from sweep.runner import train_runs

pytestmark = pytest.mark.faults
TINY = ["epochs=1", "model.hidden=[8]", "wandb.mode=disabled", "lr=0.01"]

SCALED_SGD = textwrap.dedent("""
    import torch

    SCALE = {scale}

    class ScaledSGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"] * SCALE)
""")


NUMPY_MOMENTUM = textwrap.dedent("""
    import numpy as np
    import torch

    class NumpyMomentum(torch.optim.Optimizer):
        \"\"\"Heavy ball whose state is numpy: a velocity array and a step count (np.int64).\"\"\"

        def __init__(self, params, lr=0.1, momentum=0.9):
            super().__init__(params, dict(lr=lr, momentum=momentum))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    if not state:
                        state["v"] = np.zeros(tuple(p.shape), dtype=np.float64)
                        state["t"] = np.int64(0)
                    state["t"] = state["t"] + 1
                    state["v"] = group["momentum"] * state["v"] + p.grad.double().cpu().numpy()
                    p.sub_(torch.from_numpy(state["v"]).to(p), alpha=group["lr"])
""")


@pytest.fixture
def student(tmp_path, monkeypatch):
    """A folder holding the student's package hw1/, as the current directory (where `sweep` is run)."""
    (tmp_path / "hw1").mkdir()
    (tmp_path / "hw1" / "__init__.py").write_text("")
    (tmp_path / "hw1" / "optim.py").write_text(SCALED_SGD.format(scale=2.0))
    (tmp_path / "hw1" / "numpy_state.py").write_text(NUMPY_MOMENTUM)
    monkeypatch.chdir(tmp_path)
    # in-process runs import hw1 from this folder: not another test's hw1, cached or earlier on sys.path
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m == "hw1" or m.startswith("hw1.")]:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path
    for name in [m for m in sys.modules if m == "hw1" or m.startswith("hw1.")]:
        del sys.modules[name]


def test_fixing_a_students_optimizer_and_rerunning_trains_the_fixed_code(student):
    """Rerunning after a fix returned the old results (`{'done': 2} in 0.0 s`): nothing recorded which version of
    the student's code ran. Now the source's hash is `optimizer.code`, part of the run's identity."""
    out = student / "runs"
    args = ["run", "-m", "optimizer=custom", "optimizer.cls=hw1.optim.ScaledSGD", "seed=0,1", *TINY]
    sweep_cli(*args, f"out_dir={out}", "name=hw", cwd=student, check=True)
    first = store.scan(out / "hw")
    assert len(first) == 2 and {r.status for r in first.values()} == {"done"}
    (code,) = {r.config["optimizer"]["code"] for r in first.values()}
    assert code and len(code) == 16

    (student / "hw1" / "optim.py").write_text(SCALED_SGD.format(scale=1.0))  # the fix
    sweep_cli(*args, f"out_dir={out}", "name=hw", cwd=student, check=True)
    runs = store.scan(out / "hw")
    assert len(runs) == 4 and {r.status for r in runs.values()} == {"done"}  # two more runs, trained on the fix
    fixed = [r for r in runs.values() if r.config["optimizer"]["code"] != code]
    assert len(fixed) == 2
    old_loss = sorted(r.summary["final_train_loss"] for r in first.values())
    assert sorted(r.summary["final_train_loss"] for r in fixed) != old_loss

    # the same code again: nothing to train (a file of another folder does not count)
    (student / "notes.py").write_text("x = 1\n")
    p = sweep_cli(*args, f"out_dir={out}", "name=hw", cwd=student, check=True)
    assert len(store.scan(out / "hw")) == 4, p.stdout + p.stderr


def test_a_run_whose_code_changed_after_it_was_configured_fails_said(student):
    """A SLURM job queued before the student's edit would train the new code under the old code's record."""
    cfg = make_cfg(student / "runs", "optimizer=custom", "optimizer.cls=hw1.optim.ScaledSGD", *TINY)
    (student / "hw1" / "helpers.py").write_text("EPS = 1e-8\n")  # any file of the package is part of the code
    (result,) = train_runs([cfg])
    assert result["status"] == "failed"
    assert "the code changed since this run was configured" in result["error"]
    assert store.history(student / "runs" / "single", result["run_id"]).empty  # nothing trained


def test_setting_optimizer_code_by_hand_is_refused(student):
    p = sweep_cli("run", "optimizer=custom", "optimizer.cls=hw1.optim.ScaledSGD", "optimizer.code=abc", *TINY)
    assert p.returncode == 2 and "optimizer.code=abc is set by sweep" in p.stderr, p.stderr


def test_an_optimizer_keeping_numpy_state_resumes_bit_identically(student):
    """Checkpoints load with weights_only=True, which refused the numpy arrays of a student's optimizer state:
    such a run could never resume ("Weights only load failed", many lines). numpy state now travels as tensors
    and comes back as numpy, of the same dtype."""
    args = ["optimizer=custom", "optimizer.cls=hw1.numpy_state.NumpyMomentum", "seed=0", "dtype=float64",
            "epochs=2", "model.hidden=[8]", "wandb.mode=disabled", "checkpoint_every=5", "log_every=5"]  # fmt: skip
    ref, cut = make_cfg(student / "ref", *args), make_cfg(student / "cut", *args)
    train_runs([ref], progress=False)
    with pytest.raises(Interrupted):
        train_runs([cut], progress=False, should_stop=stop_after(4))
    saved = store.checkpoint(student / "cut" / "single", store_id(cut))
    assert saved is not None and saved["step"] > 0
    (s,) = train_runs([cut], progress=False)
    assert s["status"] == "done" and 0 < s["resumed_from_step"] < s["total_steps"], s
    assert_same_histories([ref], [cut])


HANGS = textwrap.dedent("""
    import threading
    import torch

    class Hangs(torch.optim.SGD):
        \"\"\"Steps normally twice, then waits forever (a student's loop that never ends).\"\"\"

        def step(self, closure=None):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls > 2:
                threading.Event().wait()
            return super().step(closure)
""")


def test_an_optimizer_that_hangs_fails_its_own_runs_and_the_grid_goes_on(student):
    """Nothing timed out a student's optimizer that waits forever: `sweep run -m` never ended. Now a step past
    step_timeout_s fails that optimizer's runs, said; the rest of the grid trains; the exit status is 1."""
    (student / "hw1" / "hangs.py").write_text(HANGS)
    out = student / "runs"
    p = sweep_cli(
        "run", "-m", "optimizer=custom,sgd", "optimizer.cls=hw1.hangs.Hangs", "step_timeout_s=5", *TINY,
        f"out_dir={out}", "name=g", cwd=student, timeout=240,
    )  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    by_optimizer = {r.config["optimizer"]["name"]: r for r in store.scan(out / "g").values()}
    assert by_optimizer["sgd"].status == "done"
    assert by_optimizer["custom"].status == "failed"
    error = by_optimizer["custom"].summary["error"]
    assert "a step of optimizer.cls=hw1.hangs.Hangs took longer than 5 s" in error, error


def test_sweep_check_fails_an_optimizer_that_hangs_in_one_line(student):
    """`sweep check` waited forever on a hanging step(); now one line names the check, exit 1."""
    (student / "hangs.py").write_text(HANGS)
    p = sweep_cli("check", "hangs.Hangs", "--like", "sgd", "--timeout", "5", cwd=student, timeout=240)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.strip().startswith("sweep check: FAIL: Hangs in the check '"), p.stderr
    assert "took longer than 5 s" in p.stderr


ENDS_PROCESS = textwrap.dedent("""
    import os
    import torch

    class EndsProcess(torch.optim.SGD):
        \"\"\"Steps twice, then ends the process without a word.\"\"\"

        def step(self, closure=None):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls > 2:
                os._exit(0)
            return super().step(closure)

    class EndsAtOnce(torch.optim.SGD):
        def step(self, closure=None):
            os._exit(0)
""")


def test_an_optimizer_that_ends_its_process_fails_its_own_runs_and_the_grid_goes_on(student):
    """`os._exit(0)` in a student's step() ended the whole `sweep run -m` with status 0: no failure recorded, later
    configs never trained. A student's packs now train in a process of their own: its runs fail, said."""
    (student / "hw1" / "ends.py").write_text(ENDS_PROCESS)
    out = student / "runs"
    p = sweep_cli(
        "run", "-m", "optimizer=custom,sgd", "optimizer.cls=hw1.ends.EndsProcess", "seed=0,1", *TINY,
        f"out_dir={out}", "name=g", cwd=student, timeout=240,
    )  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    runs = store.scan(out / "g").values()
    assert sorted((r.config["optimizer"]["name"], r.status) for r in runs) == [
        ("custom", "failed"), ("custom", "failed"), ("sgd", "done"), ("sgd", "done")
    ]  # fmt: skip
    for r in runs:
        if r.status == "failed":
            assert (
                "its process ended without a word: os._exit, or a crash, in optimizer.cls=hw1.ends.EndsProcess"
                in (r.summary["error"])
            )
    # ending the process at the first step is seen by the check before anything runs: one line, exit 2
    p = sweep_cli(
        "run", "-m", "optimizer=custom,sgd", "optimizer.cls=hw1.ends.EndsAtOnce", *TINY, f"out_dir={out}", "name=h",
        cwd=student, timeout=240,
    )  # fmt: skip
    assert p.returncode == 2, p.stdout + p.stderr
    assert "optimizer.cls=hw1.ends.EndsAtOnce ended its process at its first step (os._exit, or a crash)" in p.stderr
    assert not (out / "h").exists()


def test_sweep_check_fails_an_optimizer_that_ends_its_process(tmp_path):
    """`os._exit(0)` in a student's step() ended `sweep check` with status 0 and no output: a pass. The checks
    now run in a process of their own; its silent end is a FAIL, exit 1."""
    (tmp_path / "ends.py").write_text(
        "import os, torch\nclass MyAdam(torch.optim.Adam):\n    def step(self, closure=None):\n        os._exit(0)\n"
    )
    p = sweep_cli("check", "ends.MyAdam", "--like", "adam", cwd=tmp_path, timeout=240)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.strip() == (
        "sweep check: FAIL: ends.MyAdam ended the checking process without a word (os._exit, or a crash)"
    )


def test_sweep_run_and_sweep_check_import_the_same_module_for_one_name(tmp_path, monkeypatch):
    """`sweep run` appended the current directory to sys.path while `sweep check` put it first: with a module of
    the same name on PYTHONPATH, the two graded and trained different code. Both now find it as `python -m`."""
    from sweep.check import load_class as check_class
    from sweep.optim.custom import load_class as run_class

    for folder, name in (("here", "Mine"), ("elsewhere", "Theirs")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "samename_opt.py").write_text(
            f"import torch\nclass MyAdam(torch.optim.Adam):\n    WHOSE = {name!r}\n"
        )
    monkeypatch.setattr(sys, "path", [str(tmp_path / "elsewhere"), *sys.path])
    monkeypatch.delitem(sys.modules, "samename_opt", raising=False)
    monkeypatch.chdir(tmp_path / "here")
    assert run_class("samename_opt.MyAdam").WHOSE == "Mine"
    assert check_class("samename_opt.MyAdam").WHOSE == "Mine"
    sys.modules.pop("samename_opt", None)
