"""optimizer=custom: a student's own torch.optim.Optimizer subclass, swept beside the built-in ones, as a pack,
resumed bit-identically, and refused in one line when it cannot be used."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import kill_when_held, make_cfg, stop_after, sweep_cli
from store_helpers import history, summary

from sweep import store
from sweep.engine import Interrupted
from sweep.runner import train_runs

MY_ADAM = textwrap.dedent('''
    import torch

    class MyAdam(torch.optim.Optimizer):
        """A student's Adam (torch.optim.Adam's rule, written by hand)."""

        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
            super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    if not st:
                        st["t"] = 0
                        st["m"] = torch.zeros_like(p)
                        st["v"] = torch.zeros_like(p)
                    st["t"] += 1
                    st["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                    st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    m_hat = st["m"] / (1 - b1 ** st["t"])
                    v_hat = st["v"] / (1 - b2 ** st["t"])
                    p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))

    class NotAnOptimizer:
        pass

    def heavy_ball(p, grad, state, *, lr, momentum=0.9):
        """The functional form: called on the whole pack's stacked parameters, lr broadcasting over them."""
        buf = state.get("momentum_buffer")
        if buf is None:
            state["momentum_buffer"] = buf = grad.clone()
        else:
            buf.mul_(momentum).add_(grad)
        p.sub_(lr * buf)

    def own_steps(p, grad, state, *, lr):
        """Steps that shrink by each model's own gradient: one value per model of the pack (a [K] tensor)."""
        if "scale" not in state:
            state["scale"] = torch.ones(p.shape[0], dtype=p.dtype, device=p.device)
        p.sub_(lr * state["scale"].view(-1, *[1] * (p.dim() - 1)) * grad)
        state["scale"].div_(1 + grad.flatten(1).norm(dim=1))

    class Quits(torch.optim.SGD):
        """A student's step that ends the process the way a script would, from its third step."""

        def step(self, closure=None):
            import sys

            self.n = getattr(self, "n", 0) + 1
            if self.n >= 3:
                sys.exit(0)
            return super().step(closure)

    class QuitsAtOnce(torch.optim.SGD):
        def step(self, closure=None):
            import sys

            sys.exit(0)

    def shrinking_steps(p, grad, state, *, lr, shrink=0.9):
        """Steps that shrink by `shrink` each time: the scale is one number for the pack (a 0-dim tensor)."""
        if "scale" not in state:
            state["scale"] = torch.ones((), dtype=torch.float64, device=p.device)
        p.sub_(lr * state["scale"] * grad)
        state["scale"].mul_(shrink)
''')
COMMON = [
    "epochs=2",
    "model.hidden=[16]",
    "wandb.mode=disabled",
    "log_every=5",
    "checkpoint_every=10",
    "dtype=float64",
    "lr=0.01",
]


@pytest.fixture
def student(tmp_path, monkeypatch):
    """A folder holding the student's module, as the current directory (where `sweep` is run)."""
    (tmp_path / "hw1").mkdir()
    (tmp_path / "hw1" / "__init__.py").write_text("")
    (tmp_path / "hw1" / "optim.py").write_text(MY_ADAM)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_grid_of_a_students_optimizer_and_adam_runs_as_packs_and_matches_adam(student):
    out = student / "runs"
    sweep_cli(
        "run",
        "-m",
        "optimizer=custom,adam",
        "optimizer.cls=hw1.optim.MyAdam",
        "seed=0,1",
        *COMMON,
        f"out_dir={out}",
        "name=hw",
        cwd=student,
        check=True,
    )
    rec = json.loads((out / "hw" / "sweep.json").read_text())
    records = store.scan(out / "hw")
    cfgs = {}
    for r in rec["runs"]:
        run = records[r["run_id"]]
        s = run.summary
        assert s["status"] == "done" and s["pack_size"] == 2, s
        c = run.config
        cfgs[(c["optimizer"]["name"], c["seed"])] = (c, store.history(out / "hw", r["run_id"]))
    assert len(cfgs) == 4
    assert cfgs[("adam", 0)][0]["optimizer"]["cls"] is None  # the adam points do not carry the cls
    assert cfgs[("custom", 0)][0]["optimizer"]["cls"] == "hw1.optim.MyAdam"
    for seed in (0, 1):
        mine, ref = cfgs[("custom", seed)][1], cfgs[("adam", seed)][1]
        np.testing.assert_allclose(mine.train_loss, ref.train_loss, rtol=1e-9)
        np.testing.assert_allclose(mine.test_loss.dropna(), ref.test_loss.dropna(), rtol=1e-9)


def test_a_students_optimizer_resumes_from_its_state_dict_bit_identically(student, one_thread):
    args = [*COMMON, "optimizer=custom", "optimizer.cls=hw1.optim.MyAdam", "optimizer.kwargs={betas:[0.8,0.99]}"]
    ref, cut = make_cfg(student / "ref", *args), make_cfg(student / "cut", *args)
    train_runs([ref], progress=False)
    with pytest.raises(Interrupted):
        train_runs([cut], progress=False, should_stop=stop_after(5))
    (s,) = train_runs([cut], progress=False)
    want = summary(ref)
    assert 0 < s["resumed_from_step"] < s["total_steps"]
    assert s["final_train_loss"] == want["final_train_loss"] and s["final_test_loss"] == want["final_test_loss"]
    pd.testing.assert_frame_equal(history(ref), history(cut))


def test_a_students_update_function_with_a_0dim_state_resumes_bit_identically(student, one_thread, capfd):
    """A value the whole pack shares (0.9**t, a 0-dim tensor made on the first step) comes back from the
    checkpoints as that one 0-dim value, not as one entry per model (which broadcast wrongly in a pack of 2):
    each resumed run is its uninterrupted self bit for bit."""
    args = [*COMMON, "optimizer=custom", "optimizer.cls=hw1.optim.shrinking_steps", "lr=0.5"]
    ref = [make_cfg(student / "ref", *args, f"seed={s}") for s in (0, 1)]
    cut = [make_cfg(student / "cut", *args, f"seed={s}") for s in (0, 1)]
    train_runs(ref, pack=2, progress=False)
    with pytest.raises(Interrupted):
        train_runs(cut, pack=2, progress=False, should_stop=stop_after(5))
    for s in train_runs(cut, pack=2, progress=False):
        assert s["status"] == "done" and 0 < s["resumed_from_step"] < s["total_steps"], s
        assert s["pack_size"] == 2, "the resumed pack failed and its runs were retrained one by one"
    assert "failed" not in capfd.readouterr().err
    for a, b in zip(ref, cut):
        pd.testing.assert_frame_equal(history(a), history(b))


def test_a_students_update_function_with_per_model_state_resumes_bit_identically(student, one_thread):
    """A [K] state (one value per model) was checkpointed as one 0-dim slice per model and restored as the
    shared value: every model resumed with the last model's. Each resumed run is now its uninterrupted self."""
    args = [*COMMON, "optimizer=custom", "optimizer.cls=hw1.optim.own_steps"]
    ref = [make_cfg(student / "ref", *args, f"lr={lr}") for lr in (0.05, 0.2, 0.5)]
    cut = [make_cfg(student / "cut", *args, f"lr={lr}") for lr in (0.05, 0.2, 0.5)]
    train_runs(ref, pack=3, progress=False)
    with pytest.raises(Interrupted):
        train_runs(cut, pack=3, progress=False, should_stop=stop_after(5))
    for s in train_runs(cut, pack=3, progress=False):
        assert s["status"] == "done" and 0 < s["resumed_from_step"] < s["total_steps"], s
    for a, b in zip(ref, cut):
        pd.testing.assert_frame_equal(history(a), history(b))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer=custom"], "optimizer=custom needs optimizer.cls=MODULE.CLASS"),
        (["optimizer=custom", "optimizer.cls=hw1.nothere.MyAdam"], "cannot import module 'hw1.nothere'"),
        (["optimizer=custom", "optimizer.cls=hw1.optim.Missing"], "has no 'Missing'"),
        (["optimizer=custom", "optimizer.cls=hw1.optim.NotAnOptimizer"], "is not a torch.optim.Optimizer subclass"),
        (
            ["optimizer=custom", "optimizer.cls=hw1.optim.MyAdam", "optimizer.kwargs={momentum:0.9}"],
            "unexpected keyword argument 'momentum'",
        ),
        (["optimizer=adam", "optimizer.kwargs={a:1}"], "optimizer.kwargs does not apply to optimizer=adam"),
    ],
)
def test_an_unusable_custom_optimizer_is_one_line_and_nothing_is_written(student, overrides, message):
    p = sweep_cli("run", *overrides, "epochs=1", f"out_dir={student / 'runs'}", cwd=student)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (student / "runs").exists()


def test_a_students_update_function_trains_the_pack_batched_and_resumes(student, one_thread):
    fn = ["optimizer=custom", "optimizer.cls=hw1.optim.heavy_ball", "optimizer.kwargs={momentum:0.9}"]
    lrs = (0.01, 0.05, 0.1)
    mine = [make_cfg(student / "mine", *COMMON, *fn, f"lr={lr}") for lr in lrs]
    ref = [make_cfg(student / "ref", *COMMON, "optimizer=momentum", "optimizer.momentum=0.9", f"lr={lr}") for lr in lrs]
    train_runs(mine, pack=3, progress=False)
    train_runs(ref, pack=3, progress=False)
    for a, b in zip(mine, ref):
        assert summary(a)["pack_size"] == 3  # one batched pack
        np.testing.assert_allclose(
            history(a).train_loss,
            history(b).train_loss,
            rtol=1e-9,
        )
    cut = [make_cfg(student / "cut", *COMMON, *fn, f"lr={lr}") for lr in lrs]
    with pytest.raises(Interrupted):
        train_runs(cut, pack=3, progress=False, should_stop=stop_after(5))
    again = train_runs(cut, pack=3, progress=False)
    for s, a in zip(again, mine):
        assert s["resumed_from_step"] > 0 and s["final_train_loss"] == summary(a)["final_train_loss"]


def test_a_killed_sweep_of_a_students_optimizer_resumes_bit_identically(student):
    """SIGKILL mid-run (no checkpoint on the way out), then the same command: the student's optimizer state
    comes back from its state_dict and the run ends as if never stopped."""
    import sys

    args = [
        "optimizer=custom",
        "optimizer.cls=hw1.optim.MyAdam",
        "epochs=10",
        "model.hidden=[32,32]",
        "wandb.mode=disabled",
        "log_every=5",
        "checkpoint_every=20",
        "lr=3e-3",
    ]
    ref, out = student / "ref", student / "killed"
    sweep_cli("run", f"out_dir={ref}", *args, cwd=student, check=True)
    killed_at = kill_when_held([sys.executable, "-m", "sweep.cli", "run", f"out_dir={out}", *args], 100, student)
    sweep_cli("run", f"out_dir={out}", *args, cwd=student, check=True)
    (run,) = store.scan(out / "single")  # one run, resumed (not a second one)
    got, want = (store.summary(o / "single", run) for o in (out, ref))
    assert killed_at <= got["resumed_from_step"] < got["total_steps"]
    assert got["final_test_loss"] == want["final_test_loss"] and got["final_train_loss"] == want["final_train_loss"]


def test_an_optimizer_that_calls_sys_exit_fails_its_own_runs_and_the_grid_goes_on(student):
    """`sys.exit(0)` in a student's step() ended the whole `sweep run -m` with status 0, no failure recorded and
    later configs never trained. Now its runs fail (said), the others train, and the grid exits 1."""
    out = student / "runs"
    p = sweep_cli(
        "run", "-m", "optimizer=custom,adam", "optimizer.cls=hw1.optim.Quits", "lr=0.01", "epochs=1",
        "model.hidden=[8]", "wandb.mode=disabled", f"out_dir={out}", "name=g", cwd=student,
    )  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    by_optimizer = {r.config["optimizer"]["name"]: r for r in store.scan(out / "g").values()}
    assert by_optimizer["adam"].status == "done"
    assert by_optimizer["custom"].status == "failed"
    assert "called sys.exit(0)" in by_optimizer["custom"].summary["error"]
    # exiting at once is seen by the check before anything runs: one line, exit 2, nothing trained
    p = sweep_cli(
        "run", "-m", "optimizer=custom,adam", "optimizer.cls=hw1.optim.QuitsAtOnce", "epochs=1",
        f"out_dir={out}", "name=h", cwd=student,
    )  # fmt: skip
    assert p.returncode == 2 and "QuitsAtOnce(params, lr=0.1, **{}) failed: called sys.exit(0)" in p.stderr, p.stderr
    assert not (out / "h").exists()
