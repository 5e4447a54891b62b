"""analysis._findings and the findings `sweep report` writes under each plot: choices made on the validation loss
(never test), a setting where a seed blew up never chosen for the seeds that survived, the range within 2x of the
best, n and SE stated."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from sweep import analysis
from sweep.analysis._findings import best_row, config_stats, pm, within_factor


def frame(rows, swept):
    runs = pd.DataFrame(rows)
    runs.attrs.update(swept=swept, config_keys=[k for k in swept if k != "seed"], name="hand")
    return runs


def lr_rows(val: dict, test: dict | None = None, blown: dict | None = None, opt: str = "sgd"):
    """3 seeds per lr; val[lr] the mean validation loss (seeds at mean - 0.01, mean, mean + 0.01)."""
    rows = []
    for lr, v in val.items():
        for s in range(3):
            bad = s < (blown or {}).get(lr, 0)
            rows.append(
                {
                    "run_id": f"{opt}{lr}{s}",
                    "optimizer.name": opt,
                    "lr": lr,
                    "seed": s,
                    "status": "diverged" if bad else "done",
                    "final_val_loss": np.nan if bad else v + 0.01 * (s - 1),
                    "final_test_loss": np.nan if bad else (test or val)[lr] + 0.01 * (s - 1),
                }
            )
    return rows


def test_best_is_chosen_on_validation_and_never_where_a_seed_blew_up():
    # lr 0.3 has the lowest validation mean over its surviving seeds, but one seed diverged: not chosen
    runs = frame(lr_rows({0.01: 1.0, 0.1: 0.2, 0.3: 0.1, 1.0: 5.0}, blown={0.3: 1}), ["lr", "seed"])
    stats = config_stats(runs, ["lr"])
    assert stats.set_index("lr").loc[0.3, "blown"] == 1 and stats.set_index("lr").loc[0.3, "n"] == 2
    best = best_row(stats)
    assert best["lr"] == 0.1 and best["mean"] == pytest.approx(0.2) and best["se"] == pytest.approx(0.01 / np.sqrt(3))
    # within 2x of 0.2 and clean: 0.1 only (0.3 blew up in a seed, 0.01 is 5x)
    assert within_factor(stats, "lr", best) == (0.1, 0.1)


def test_test_loss_never_picks():
    # validation prefers 0.1, test would prefer 0.01: the choice follows validation
    runs = frame(lr_rows({0.01: 0.5, 0.1: 0.2, 0.3: 0.35}, test={0.01: 0.05, 0.1: 0.3, 0.3: 0.3}), ["lr", "seed"])
    best = best_row(config_stats(runs, ["lr"]))
    assert best["lr"] == 0.1
    assert within_factor(config_stats(runs, ["lr"]), "lr", best) == (0.1, 0.3)


def test_pm_states_n_and_se():
    assert pm(0.12345, 0.0041, 3) == "0.123 ± 0.0041 (n=3)"
    assert pm(0.5, float("nan"), 1) == "0.5 (n=1)"


def test_lr_sensitivity_states_its_finding(tmp_path):
    rows = lr_rows({0.001: 0.5, 0.01: 0.1, 0.1: 0.15, 1.0: 3.0}, opt="adam", blown={1.0: 3})
    rows += lr_rows({0.001: 2.0, 0.01: 1.0, 0.1: 0.3, 1.0: 0.25}, opt="sgd")
    sw = analysis.Sweep(tmp_path, frame(rows, ["optimizer.name", "lr", "seed"]))
    fig = analysis.plot_lr_sensitivity(sw)
    text = fig.sweep_finding
    assert "**adam**: best lr 0.01 (validation loss 0.1 ± 0.0058 (n=3)" in text
    assert "within 2× of that over lr 0.01–0.1" in text and "at lr 1 (3/3)" in text
    assert "**sgd**: best lr 1 " in text and "within 2× of that over lr 0.1–1" in text
    out = analysis.plot_lr_sensitivity(sw, out=tmp_path / "x.png")
    assert out.exists() and analysis.plot_lr_sensitivity.last_finding == text


def test_expected_best_of_k_is_exact():
    from itertools import combinations

    from sweep.analysis.best_of_k import expected_best_of_k

    val = np.array([0.5, 0.2, 0.9, 0.4, 0.3])
    test = np.array([0.55, 0.25, 0.8, 0.35, 0.3])
    best, chosen = expected_best_of_k(val, test)
    for k in range(1, 6):
        subsets = list(combinations(range(5), k))
        assert best[k - 1] == pytest.approx(np.mean([val[list(s)].min() for s in subsets]), rel=1e-12)
        picks = [s[int(np.argmin(val[list(s)]))] for s in subsets]
        assert chosen[k - 1] == pytest.approx(np.mean(test[picks]), rel=1e-12)
    assert best[0] == pytest.approx(val.mean()) and best[-1] == 0.2 and chosen[-1] == 0.25
    # a run that blew up (NaN) is never picked unless all k did: inf where that is possible
    best, _ = expected_best_of_k(np.array([0.5, np.nan, 0.3]))
    assert np.isinf(best[0]) and best[1] == pytest.approx((0.3 + 0.5 + 0.3) / 3) and best[2] == 0.3


def _seeds(configs: dict, key: str = "optimizer.name"):
    """Runs from {config value: [final validation loss per seed, NaN for a seed that diverged]}."""
    rows = []
    for v, losses in configs.items():
        for s, loss in enumerate(losses):
            rows.append(
                {"run_id": f"{v}-{s}", key: v, "seed": s, "status": "diverged" if np.isnan(loss) else "done",
                 "final_val_loss": loss, "final_test_loss": loss, "final_test_acc": np.nan}
            )  # fmt: skip
    return frame(rows, [key, "seed"])


def test_bootstrap_band_holds_the_expected_best_of_k_and_collapses_without_spread():
    from sweep.analysis.best_of_k import bootstrap_band, expected_best_of_k, max_k

    val = np.random.default_rng(0).normal(1.0, 0.1, 10)
    lo, hi = bootstrap_band(val)
    best = expected_best_of_k(val)[0][: max_k(10)]
    assert len(lo) == max_k(10) == 5 and np.all(lo <= best) and np.all(best <= hi) and np.all(hi - lo > 0.01)
    lo, hi = bootstrap_band(np.full(8, 0.7))
    np.testing.assert_allclose([lo, hi], 0.7)


def test_best_of_k_stops_at_half_the_seeds_and_draws_a_band_per_curve(tmp_path):
    """At k = n the 'expected best' is the sample's one best seed: the curve ends at n/2, each with a band."""
    rng = np.random.default_rng(1)
    runs = _seeds({"sgd": rng.normal(1.0, 0.1, 10), "adam": rng.normal(0.6, 0.05, 10)})
    fig = analysis.plot_best_of_k(analysis.Sweep(tmp_path, runs))
    assert fig is not None, analysis.plot_best_of_k.last_skip
    right = fig.axes[1]
    curves = [ln for ln in right.get_lines() if ln.get_linestyle() == "-"]
    assert len(curves) == 2 and all(max(ln.get_xdata()) == 5 for ln in curves)
    bands = [c for c in right.collections if len(c.get_paths())]
    assert len(bands) == 2
    for band, ln in zip(bands, curves):
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.max() - ys.min() > 0 and ys.min() <= min(ln.get_ydata()) and max(ln.get_ydata()) <= ys.max()
    assert "k ≤ n/2" in right.get_title(loc="left").replace("\n", " ")
    finding = analysis.plot_best_of_k.last_finding
    assert "k ≤ n/2" in finding and "bootstrap" in finding
    matplotlib.pyplot.close(fig)


def test_restarts_says_which_configurations_it_left_out_and_why(tmp_path):
    """34 configurations, 2 of them diverged in every seed: the 30 best are drawn, and the title says that the
    2 with no finished seed and the 2 ranked last were left out, never silently."""
    configs = {f"opt{i:02d}": [1.0 + i / 100, 1.01 + i / 100] for i in range(32)}
    configs |= {"bad1": [np.nan, np.nan], "bad2": [np.nan, np.nan]}
    fig = analysis.plot_restarts(analysis.Sweep(tmp_path, _seeds(configs)))
    title = fig._suptitle.get_text()
    assert "the 30 best configurations; left out: 2 with no finished seed (their runs: 4 diverged)" in title
    assert "2 ranked below them" in title
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 30 and "bad1" not in labels and "opt31" not in labels
    matplotlib.pyplot.close(fig)


def test_survivors_of_a_mostly_blown_up_configuration_are_hollow_and_show_their_n(tmp_path):
    from matplotlib.collections import PathCollection

    runs = _seeds({"all": [1.0, 1.1, 1.2], "most": [1.0, 1.1, np.nan], "one": [0.5, np.nan, np.nan]})
    fig = analysis.plot_restarts(analysis.Sweep(tmp_path, runs))
    ax = fig.axes[0]
    dots = sorted(
        (c for c in ax.collections if isinstance(c, PathCollection)),
        key=lambda c: -float(np.mean(c.get_offsets()[:, 1])),
    )  # rows top to bottom: all, most, one
    filled = [len(c.get_facecolor()) > 0 and c.get_facecolor()[0][3] > 0 for c in dots]
    assert filled == [True, True, False]  # 1 of 3 finished: hollow
    texts = [t.get_text() for t in ax.texts]
    assert "n=2/3" in texts and "n=1/3" in texts and "n=3/3" not in texts
    matplotlib.pyplot.close(fig)


def test_lr_sensitivity_shows_the_n_of_a_mean_of_fewer_seeds_hollow_when_most_blew_up(tmp_path):
    from matplotlib.colors import to_rgba

    runs = frame(lr_rows({0.01: 1.0, 0.1: 0.5, 1.0: 0.8}, blown={0.1: 1, 1.0: 2}), ["lr", "seed"])
    fig = analysis.plot_lr_sensitivity(analysis.Sweep(tmp_path, runs))
    ax = fig.axes[0]
    texts = {t.get_text(): t.xy[0] for t in ax.texts if t.get_text().startswith("n=")}
    assert texts == {"n=2/3": 0.1, "n=1/3": 1.0}  # 0.01 had all its seeds: no n shown
    hollow = [ln for ln in ax.get_lines() if to_rgba(ln.get_markerfacecolor()) == to_rgba("white")]
    assert [list(ln.get_xdata()) for ln in hollow] == [[1.0]]
    matplotlib.pyplot.close(fig)


def _schedule_sweep(tmp_path, val: dict, test: dict | None = None, spread: float = 0.01):
    """schedule.name x lr x 3 seeds with hand-set final losses ({(schedule, lr): mean}, seeds at mean - spread,
    mean, mean + spread) and a history per run: lr_t = lr x (1 for constant, 1/(1+epoch) otherwise) at 4 train
    rows, and a validation row per epoch ending at the run's final validation loss."""
    rows, hist = [], []
    for (sched, lr), v in val.items():
        for s in range(3):
            rid = f"{sched}-{lr}-{s}"
            final = v + spread * (s - 1)
            rows.append(
                {"run_id": rid, "schedule.name": sched, "lr": lr, "seed": s, "status": "done",
                 "final_val_loss": final, "final_test_loss": (test or val)[(sched, lr)] + spread * (s - 1)}
            )  # fmt: skip
            for e in (0.5, 1.0, 1.5, 2.0):
                rate = lr if sched == "constant" else lr / (1 + e)
                hist.append({"run_id": rid, "step": e * 10, "epoch": e, "lr_t": rate, "train_loss": 1.0})
            for e in (1.0, 2.0):
                hist.append({"run_id": rid, "step": e * 10, "epoch": e, "lr_t": np.nan, "val_loss": final + 2 - e})
    sw = analysis.Sweep(tmp_path, frame(rows, ["schedule.name", "lr", "seed"]))
    sw._history = pd.DataFrame(hist)
    return sw


def test_schedules_finding_says_a_decaying_schedule_beats_constant_only_beyond_the_ses(tmp_path):
    """Each schedule at its own best base rate (on validation); the verdict against the best constant rate counts a
    difference only when the means are further apart than the sum of their SEs (here 0.0058 each)."""
    val = {("constant", 0.05): 0.33, ("constant", 0.2): 0.40, ("inverse_time", 0.05): 0.35, ("inverse_time", 0.2): 0.30}
    fig = analysis.plot_schedules(_schedule_sweep(tmp_path, val))
    text = analysis.plot_schedules.last_finding
    assert "inverse_time at lr 0.2: validation loss 0.3 ± 0.0058 (n=3)" in text
    assert "beat the best constant rate by more than their SEs on validation: inverse_time (1 of 1)" in text
    assert "on test too: inverse_time." in text
    # the rate is drawn absolute, at each schedule's chosen base rate: 1/t from 0.2 starts above constant's 0.05
    lines = {ln.get_label().split(" ")[0]: ln for ln in fig.axes[0].get_lines()}
    assert max(lines["constant"].get_ydata()) == pytest.approx(0.05)
    assert max(lines["inverse_time"].get_ydata()) == pytest.approx(0.2 / 1.5)
    assert "validation loss" in fig.axes[1].get_ylabel()  # the metric the choice and the verdict are made on
    assert [ln.get_ydata()[-1] for ln in fig.axes[1].get_lines()] == pytest.approx([0.33, 0.30])
    matplotlib.pyplot.close(fig)

    # 0.005 apart with SEs of 0.0058: no claim that the schedule wins
    val[("inverse_time", 0.2)] = 0.325
    fig = analysis.plot_schedules(_schedule_sweep(tmp_path, val))
    text = analysis.plot_schedules.last_finding
    assert "within SE of every schedule" in text and "beat the best constant" not in text
    matplotlib.pyplot.close(fig)

    # better on validation, not on test: said
    test = {**val, ("inverse_time", 0.2): 0.335}
    val[("inverse_time", 0.2)] = 0.30
    fig = analysis.plot_schedules(_schedule_sweep(tmp_path, val, test))
    assert "on test, none does by more than the SEs" in analysis.plot_schedules.last_finding
    matplotlib.pyplot.close(fig)


def test_best_of_k_says_whether_keeping_the_best_restart_changes_the_test_loss(tmp_path):
    """Against one run, the restart validation picks of 5: lower test loss where validation tracks test, no change
    the seeds can tell where validation is noise unrelated to test, each with its paired bootstrap interval."""
    from sweep.analysis.best_of_k import bootstrap_test_gain, expected_best_of_k

    rng = np.random.default_rng(3)
    test = rng.normal(1.0, 0.1, 20)
    tracks = test + rng.normal(0, 0.01, 20)
    d, lo, hi = bootstrap_test_gain(tracks, test, 5)
    _, chosen = expected_best_of_k(tracks, test)
    assert d == pytest.approx(chosen[4] - test.mean()) and lo <= d <= hi < 0
    noise = rng.normal(1.0, 0.1, 20)
    d, lo, hi = bootstrap_test_gain(noise, test, 5)
    assert lo < 0 < hi

    runs = _seeds({"sgd": tracks, "adam": noise})
    for r, t in zip(runs.itertuples(), np.concatenate([test, test])):
        runs.loc[r.Index, "final_test_loss"] = t
    fig = analysis.plot_best_of_k(analysis.Sweep(tmp_path, runs))
    finding = analysis.plot_best_of_k.last_finding
    parts = dict(zip(finding.split("**")[1::2], finding.split("**")[2::2]))  # {name in bold: its text}
    assert "best of 5 against one run: test -" in parts["sgd"] and "a lower test loss" in parts["sgd"]
    assert "no test-loss change the seeds can tell apart from none" in parts["adam"]
    matplotlib.pyplot.close(fig)
