"""The pack-of-K training loop: learning, determinism, batched == alone, divergence, resume, checkpoints."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import kill_when_held, make_cfg, sweep_cli
from store_helpers import checkpoint, history, record, summary

from sweep import store
from sweep.config import run_id
from sweep.results import load_torch
from sweep.runner import train_runs

SMALL = ["model.hidden=[16]", "wandb.mode=disabled", "log_every=5"]


@pytest.mark.parametrize(
    "data, extra",
    [
        ("digits", []),
        ("spirals", ["optimizer=adam", "lr=0.01", "model.hidden=[64,64]", "epochs=30"]),
        ("teacher", ["lr=0.05"]),
        ("steps", ["lr=0.1", "model.activation=tanh", "epochs=8"]),
        ("mnist1d", ["data.n_samples=1000", "lr=0.1"]),
    ],
)
def test_loss_falls_on_every_generated_or_bundled_dataset(tmp_path, data, extra):
    cfg = make_cfg(
        tmp_path,
        f"data={data}",
        "epochs=5",
        "optimizer=momentum",
        *SMALL,
        *extra,
        f"data.cache_dir={tmp_path / 'cache'}" if data == "mnist1d" else "data.seed=0",
    )
    (s,) = train_runs([cfg], progress=False)
    h = history(cfg)
    assert s["status"] == "done"
    loss = h.train_loss.dropna()  # evaluation rows carry no train loss
    assert loss.iloc[-1] < 0.7 * loss.iloc[0], loss.tolist()


def test_same_seed_gives_identical_history_and_other_seed_differs(tmp_path):
    a = make_cfg(tmp_path / "a", "epochs=2", *SMALL)
    b = make_cfg(tmp_path / "b", "epochs=2", *SMALL)
    c = make_cfg(tmp_path / "c", "epochs=2", "seed=1", *SMALL)
    train_runs([a], progress=False), train_runs([b], progress=False), train_runs([c], progress=False)
    pd.testing.assert_frame_equal(history(a), history(b))
    assert not np.allclose(history(a).train_loss, history(c).train_loss)
    assert run_id(a) == run_id(b) != run_id(c)


def test_run_id_ignores_paths_names_and_tracking(tmp_path):
    a = make_cfg(tmp_path / "a", "epochs=2")
    b = make_cfg(tmp_path / "b", "epochs=2", "name=other", "wandb.mode=disabled", "log_every=3", "device=cpu")
    assert run_id(a) == run_id(b)
    assert run_id(a) != run_id(make_cfg(tmp_path, "epochs=3"))


OPTIMIZERS = [
    ("sgd", []),
    ("momentum", ["optimizer.dampening=0.1"]),
    ("nesterov", []),
    ("adagrad", ["optimizer.lr_decay=0.01"]),
    ("rmsprop", ["optimizer.momentum=0.5", "optimizer.centered=true"]),
    ("adam", ["optimizer.amsgrad=true"]),
    ("adamw", []),
    ("anneal", ["optimizer.temperature=0.1"]),
]
VARIANTS = {  # per-model settings that differ inside one pack
    "sgd": [["lr=0.05"], ["lr=0.2", "seed=1"], ["lr=0.1", "optimizer.weight_decay=0.01", "init=he_normal"]],
    "momentum": [["lr=0.05"], ["lr=0.02", "optimizer.momentum=0.5", "seed=2"], ["lr=0.05", "schedule=cosine"]],
    "nesterov": [["lr=0.05"], ["lr=0.02", "optimizer.momentum=0.8", "seed=3"]],
    "adagrad": [["lr=0.05"], ["lr=0.1", "optimizer.eps=1e-6", "seed=1"]],
    "rmsprop": [["lr=0.001"], ["lr=0.003", "optimizer.alpha=0.9", "seed=1"]],
    "adam": [["lr=0.003"], ["lr=0.01", "optimizer.betas=[0.8,0.99]", "seed=1"], ["lr=0.001", "init.scale=2.0"]],
    "adamw": [["lr=0.003"], ["lr=0.01", "optimizer.weight_decay=0.1", "seed=4"]],
    "anneal": [["lr=0.01"], ["lr=0.02", "seed=1"], ["lr=0.01", "optimizer.cooling=0.99"]],
}


@pytest.mark.parametrize("name, extra", OPTIMIZERS, ids=[o for o, _ in OPTIMIZERS])
def test_pack_trained_batched_equals_each_model_trained_alone(tmp_path, name, extra):
    """float64: every model's history from the pack matches its solo run to 1e-10 (relative)."""
    common = [
        f"optimizer={name}",
        *extra,
        "data=spirals",
        "data.n_samples=300",
        "epochs=3",
        "batch_size=32",
        "dtype=float64",
        *SMALL,
    ]
    packed = [make_cfg(tmp_path / "pack", *common, *v) for v in VARIANTS[name]]
    alone = [make_cfg(tmp_path / "alone", *common, *v) for v in VARIANTS[name]]
    train_runs(packed, pack=len(packed), progress=False)
    for c in alone:
        train_runs([c], progress=False)
    for p, a in zip(packed, alone):
        assert summary(p)["pack_size"] == len(packed) and summary(a)["pack_size"] == 1
        hp, ha = history(p), history(a)
        assert len(hp) == len(ha) > 0
        for col in ("train_loss", "test_loss", "lr_t"):
            np.testing.assert_allclose(hp[col], ha[col], rtol=1e-10, atol=1e-12, err_msg=col)


def test_a_grid_over_adam_and_adamw_trains_each_with_its_own_weight_decay(tmp_path):
    """adam and adamw share an update function but not its structure (decoupled weight decay): a grid over both
    must not train the adamw runs as adam (they were packed together, and the first model's name decided)."""
    from sweep.packing import plan_packs

    common = ["data=spirals", "data.n_samples=300", "epochs=2", "batch_size=32", "dtype=float64", *SMALL]
    grid = [
        make_cfg(tmp_path / "grid", *common, f"optimizer={o}", "optimizer.weight_decay=0.1") for o in ("adam", "adamw")
    ]
    alone = [
        make_cfg(tmp_path / "alone", *common, f"optimizer={o}", "optimizer.weight_decay=0.1") for o in ("adam", "adamw")
    ]
    assert [len(p) for p in plan_packs(grid, pack=64)] == [1, 1]
    train_runs(grid, pack=64, progress=False)
    for c in alone:
        train_runs([c], progress=False)
    for g, a in zip(grid, alone):
        np.testing.assert_allclose(history(g)["train_loss"], history(a)["train_loss"], rtol=1e-10)
    assert not np.allclose(history(alone[0])["train_loss"], history(alone[1])["train_loss"])


def test_diverging_model_is_marked_at_its_step_and_does_not_disturb_the_pack(tmp_path):
    common = ["epochs=3", "dtype=float64", "data=spirals", "data.n_samples=300", *SMALL]
    ok = make_cfg(tmp_path / "pack", "lr=0.1", *common)
    bad = make_cfg(tmp_path / "pack", "lr=1000", *common)
    ok_alone = make_cfg(tmp_path / "alone", "lr=0.1", *common)
    train_runs([bad, ok], pack=2, progress=False)
    train_runs([ok_alone], progress=False)
    s = summary(bad)
    assert s["status"] == "diverged" and 1 <= s["diverged_step"] < s["total_steps"]
    assert s["step"] == s["diverged_step"] and s["epochs_trained"] == s["diverged_step"] / s["steps_per_epoch"]
    assert history(bad).step.max() < s["diverged_step"] if len(history(bad)) else True
    assert summary(ok)["status"] == "done"
    np.testing.assert_allclose(history(ok).train_loss, history(ok_alone).train_loss, rtol=1e-10)


def test_a_pack_whose_models_all_diverge_at_once_records_each_as_diverged(tmp_path, capfd):
    """Every model leaving at the same sync left an empty pack, whose index tensor was float: the pack crashed
    after recording them, and the runner reported a failure and went to retrain its runs one by one."""
    common = ["epochs=3", "dtype=float64", "data=spirals", "data.n_samples=300", *SMALL]
    bad = [make_cfg(tmp_path, f"lr={lr}", *common) for lr in (1000, 2000)]
    results = train_runs(bad, pack=2, progress=False)
    assert [r["status"] for r in results] == ["diverged", "diverged"]
    assert "failed" not in capfd.readouterr().err


def test_full_batch_is_gradient_descent_one_step_per_epoch(tmp_path):
    cfg = make_cfg(tmp_path, "optimizer=gd", "epochs=4", "lr=0.5", *SMALL)
    (s,) = train_runs([cfg], progress=False)
    assert s["steps_per_epoch"] == 1 and s["total_steps"] == 4


def _run_cli(out, *args):
    return [sys.executable, "-m", "sweep.cli", "run", f"out_dir={out}", *args]


def test_killed_run_resumes_from_checkpoint_bit_identically(tmp_path):
    args = [
        "epochs=10",
        "checkpoint_every=20",
        "log_every=5",
        "model.hidden=[64,64]",
        "optimizer=adam",
        "lr=3e-3",
        "schedule=cosine",
        "wandb.mode=disabled",
    ]
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    sweep_cli("run", f"out_dir={ref_out}", *args, check=True)
    held = kill_when_held(_run_cli(out, *args), 100)
    (run,) = store.scan(out / "single")
    killed = store.summary(out / "single", run)
    killed_at = killed["step"]
    assert killed_at == held < killed["total_steps"] and killed["status"] == "running"
    assert killed["checkpoint_step"] is not None  # the store holds a checkpoint of it to resume from
    sweep_cli("run", f"out_dir={out}", *args, check=True)
    ref, got = (store.summary(o / "single", run) for o in (ref_out, out))
    assert got["status"] == "done"
    # it resumed (a restart from scratch would give the same bits): it started at a checkpoint it had written
    assert killed_at <= got["resumed_from_step"] < got["total_steps"]
    assert got["resumed_from_step"] + got["steps_this_process"] == got["total_steps"]
    for key in ("final_train_loss", "final_test_loss", "final_test_acc", "step"):
        assert got[key] == ref[key], key  # bit-identical, not approximately equal
    pd.testing.assert_frame_equal(store.history(ref_out / "single", run), store.history(out / "single", run))


def test_checkpoint_holds_model_optimizer_and_position(tmp_path):
    cfg = make_cfg(tmp_path, "epochs=2", "optimizer=adam", "lr=1e-2", *SMALL)
    train_runs([cfg], progress=False)
    rec = record(cfg)
    assert rec.summary["checkpoint_step"] == rec.summary["total_steps"]  # a finished run's last state is kept
    packed = load_torch(rec.pack / store.CHECKPOINT_FILE)  # the pack's file: its members at one step
    assert packed["run_ids"] == [run_id(cfg)] and packed["step"] == summary(cfg)["total_steps"]
    ck = checkpoint(cfg)  # the run's own state out of it
    assert ck["step"] == summary(cfg)["total_steps"] and ck["run_id"] == run_id(cfg)
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(ck["opt_states"][0])
    assert ck["params"][0].shape == (64, 16)


def test_torch_impl_matches_scratch_impl(tmp_path):
    common = ["optimizer=adam", "lr=1e-2", "epochs=2", "dtype=float64", *SMALL]
    a = make_cfg(tmp_path / "a", *common)
    b = make_cfg(tmp_path / "b", *common, "optimizer.impl=torch")
    train_runs([a], progress=False), train_runs([b], progress=False)
    np.testing.assert_allclose(history(a).train_loss, history(b).train_loss, rtol=1e-9)


def test_a_models_recorded_values_do_not_depend_on_its_pack_size(tmp_path):
    """A rerun after a kill may train a run alone that was in a pack before (or the reverse): its float32 history
    must be the same bits. Layers of >32k weights are where torch split a lone model's norm over threads."""
    common = ["model.hidden=[256,256]", "wandb.mode=disabled", "epochs=1", "log_every=5", "optimizer=adam", "lr=1e-3"]
    alone = make_cfg(tmp_path / "alone", *common, "seed=0")
    pack = [make_cfg(tmp_path / "pack", *common, f"seed={s}") for s in (0, 1, 2)]
    train_runs([alone], progress=False)
    train_runs(pack, pack=3, progress=False)
    pd.testing.assert_frame_equal(history(alone), history(pack[0]))  # train_loss, grad_norm, test metrics


def test_train_rows_average_log_every_steps_and_evaluation_rows_stand_apart(tmp_path):
    """Epoch ends (23 or 21 steps) do not cut train rows short: every train row averages log_every steps (the
    last may be shorter and says so), and epoch-end evaluations are rows of their own."""
    cfg = make_cfg(tmp_path, "epochs=3", "log_every=10", "model.hidden=[16]", "wandb.mode=disabled")
    (s,) = train_runs([cfg], progress=False)
    h = history(cfg)
    train, ev = h[h.train_loss.notna()], h[h.test_loss.notna()]
    assert (train.train_steps.iloc[:-1] == 10).all() and train.train_steps.sum() == s["total_steps"]
    assert list(train.step.iloc[:-1]) == list(range(10, s["total_steps"], 10))
    assert list(ev.step) == [s["steps_per_epoch"] * e for e in (1, 2, 3)]
    assert ev.train_loss.isna().all() and train.test_loss.isna().all() and ev.val_loss.notna().all()
    assert s["final_train_loss"] == train.train_loss.iloc[-1]


def test_each_summary_has_its_own_models_first_and_peak_loss_after_the_pack_shrank(tmp_path, one_thread):
    """first_loss and peak_loss are read from the pack's per-model arrays by the run's place in the pack, which
    changes when a model leaves: the diverging model is first, so the others move down one place."""
    common = ["epochs=2", "model.hidden=[8]", "wandb.mode=disabled", "log_every=1", "dtype=float64"]
    cfgs = [make_cfg(tmp_path, *common, f"lr={lr}", f"seed={s}") for s, lr in enumerate((100.0, 0.05, 0.3))]
    out = train_runs(cfgs, pack=3, progress=False)
    assert [s["status"] for s in out] == ["diverged", "done", "done"]
    for cfg, s in zip(cfgs[1:], out[1:]):
        train = history(cfg).dropna(subset=["train_loss"])
        assert s["first_loss"] == train["train_loss"].iloc[0]  # log_every=1: the first row is the first step
        assert s["peak_loss"] == train["train_loss"].max()
    assert out[1]["first_loss"] != out[2]["first_loss"]  # seeds differ: a mix-up would show


def test_one_bad_step_between_syncs_is_a_divergence_wherever_it_falls():
    """A model is diverged when any step since the last sync was bad (not every step), and its first bad step is
    where it diverged."""
    import numpy as np

    from sweep.engine import divergence

    init = np.array([2.0, 2.0, 2.0])
    losses = np.array(
        [
            [1.9, 1.9, 1.9],
            [1.8, 500.0, 1.8],  # model 1: one spike above 100 x its first loss, then back
            [1.7, 1.7, np.nan],  # model 2: not finite at the last step only
            [1.6, 1.6, np.nan],
        ]
    )
    diverged, first = divergence(losses, init, 100.0)
    assert diverged.tolist() == [False, True, True]
    assert first[1] == 1 and first[2] == 2


def test_the_best_epoch_is_chosen_on_validation_and_test_is_reported_there():
    from sweep.engine import best_on_validation

    history = [
        {"step": 10, "train_loss": 1.0},
        {"step": 10, "epoch": 1.0, "val_loss": 0.50, "test_loss": 0.40},
        {"step": 20, "epoch": 2.0, "val_loss": 0.30, "test_loss": 0.45},  # best on validation
        {"step": 30, "epoch": 3.0, "val_loss": 0.35, "test_loss": 0.20},  # best on test: never chosen
    ]
    assert best_on_validation(history)["epoch"] == 2.0
    assert best_on_validation(history)["test_loss"] == 0.45
    assert best_on_validation([{"step": 1, "train_loss": 1.0}]) is None


def test_a_pack_in_a_batch_job_prints_progress_lines_to_its_log(tmp_path, monkeypatch, capsys):
    """A SLURM task's log showed nothing for a 4-minute pack (no progress bar without a terminal). Now a plain
    line says the step, K, the loss and the time left, at most every PROGRESS_LINE_S (here 0: every sync)."""
    from sweep import engine

    monkeypatch.setattr(engine, "PROGRESS_LINE_S", 0.0)
    cfgs = [make_cfg(tmp_path, *SMALL, "epochs=2", f"lr={lr}") for lr in (0.1, 0.2)]
    train_runs(cfgs, pack=2, progress=False)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("sweep: step ")]
    total = summary(cfgs[0])["total_steps"]
    assert len(lines) >= total // 5 and lines[-1].startswith(f"sweep: step {total}/{total} (100 %), K=2, "), lines
    assert "median train loss " in lines[0] and " left" in lines[0], lines[0]
    monkeypatch.setattr(engine, "PROGRESS_LINE_S", 1e9)  # a pack shorter than the cadence prints none
    train_runs([make_cfg(tmp_path / "b", *SMALL, "epochs=1")], progress=False)
    assert "sweep: step " not in capsys.readouterr().out
