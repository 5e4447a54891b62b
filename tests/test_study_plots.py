"""The study plots (issue #10 item 4): batch size against updates and examples processed (no wall time), the
gradient noise ∝ 1/B, annealing per loss evaluation, the hidden units' spread (symmetry), and the finding each
states in words; every choice made on validation."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from sweep import analysis
from sweep.analysis.gradient_noise import minibatch_variance
from sweep.analysis.init import unit_spread

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep


def test_minibatch_variance_is_trace_over_b_with_the_finite_population_factor():
    G = torch.randn(100, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = minibatch_variance(G, [1, 4, 25, 60, 100], draws=4000)
    measured, exact, se = noise.measured, noise.exact, noise.se
    tr = float(((G - G.mean(0)) ** 2).sum(1).mean())
    np.testing.assert_allclose(exact, [tr * (100 - b) / (b * 99) for b in (1, 4, 25, 60, 100)], rtol=1e-12)
    assert exact[-1] == 0 and measured[-1] == pytest.approx(0, abs=1e-20)  # the full batch has no noise
    np.testing.assert_allclose(measured[:4], exact[:4], rtol=0.05)  # SE 1 %: a few per cent at most
    assert np.all(np.abs(measured[1:4] - exact[1:4]) <= 4 * se[1:4])  # the SE is the estimate's real spread
    assert measured[1] / measured[2] == pytest.approx(25 / 4 * 96 / 75, rel=0.1)  # ∝ 1/B


def test_minibatch_variance_at_b_1_is_the_exact_per_example_variance():
    """B = 1 is every example once, not a sample: exact even for heavy tails (a few huge gradients), which a few
    thousand draws would miss by tens of per cent."""
    gen = torch.Generator().manual_seed(1)
    G = torch.randn(500, 20, generator=gen, dtype=torch.float64)
    G[:3] *= 300.0  # three examples carry most of the variance
    noise = minibatch_variance(G, [1, 8, 500])
    per_example = ((G - G.mean(0)) ** 2).sum(1).mean().item()
    assert noise.measured[0] == pytest.approx(per_example, rel=1e-12) and noise.se[0] == 0
    assert noise.exact[0] == pytest.approx(per_example, rel=1e-12)


def test_minibatch_variance_draws_fewer_batches_where_the_estimate_is_already_precise():
    from sweep.analysis.gradient_noise import REL_SE, ROUND

    gen = torch.Generator().manual_seed(2)
    many = minibatch_variance(torch.randn(200, 2000, generator=gen, dtype=torch.float64), [4, 50], draws=4000)
    assert list(many.draws) == [ROUND, ROUND]  # 2000 coordinates: one round already has SE < 1 %
    assert np.all(many.se / many.measured <= REL_SE)
    few = minibatch_variance(torch.randn(200, 3, generator=gen, dtype=torch.float64), [4, 50], draws=4000)
    assert np.all(few.draws > ROUND)  # 3 coordinates: a draw's spread is ~80 %: more rounds, up to the cap
    assert np.all((few.se / few.measured <= REL_SE) | (few.draws == 4000))


def test_unit_spread_is_zero_for_identical_units_and_about_one_for_random():
    same = np.tile(np.arange(5.0)[:, None], (1, 8))  # 8 units, each with the incoming weights 0..4
    rand = np.random.default_rng(0).normal(size=(50, 64))
    out = np.ones((8, 3))
    assert unit_spread([same, out]) == [0.0]
    assert unit_spread([np.zeros((5, 8)), out]) == [0.0]
    assert unit_spread([rand, rand, out]) == [pytest.approx(1.0, abs=0.05)] * 2


def test_batch_size_plots_updates_and_examples_not_wall_time(small_sweep):
    sw = analysis.Sweep(small_sweep)
    fig = analysis.plot_batch_size(sw)
    text = "\n".join(ax.get_xlabel() for ax in fig.axes)
    assert "updates" in text and "examples processed" in text and "wall" not in text.lower()
    ax_u, ax_e = fig.axes[1], fig.axes[2]
    assert ax_u.get_lines() and ax_e.get_lines()
    # the same runs: examples = updates x the batch size (64, or the full training set), up to the log-spaced
    # bins (4 per doubling) each axis averages in
    n = int(sw.runs["n_train"].iloc[0])
    ratios = []
    for lu, le in zip(ax_u.get_lines(), ax_e.get_lines()):
        ratios.append(max(le.get_xdata()) / max(lu.get_xdata()))
    assert len(ratios) == 2
    for r, b in zip(sorted(ratios), (64, n)):
        assert b / 2**0.25 <= r <= b * 2**0.25, (ratios, b)
    finding = analysis.plot_batch_size.last_finding
    assert "chosen on validation" in finding and "updates" in finding and "examples" in finding
    matplotlib.pyplot.close(fig)


def test_gradient_noise_falls_as_one_over_b(small_sweep, tmp_path):
    out = analysis.plot_gradient_noise(small_sweep, out=tmp_path / "g.png")
    assert out is not None, analysis.plot_gradient_noise.last_skip
    fig = analysis.plot_gradient_noise(small_sweep)
    ax = fig.axes[0]
    measured = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert len(measured) == 2  # at initialisation and after training
    for ln in measured:
        b, v = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
        assert b[0] == 1 and np.all(np.diff(v) < 0)
        slope = np.polyfit(np.log(b[b <= 64]), np.log(v[b <= 64]), 1)[0]
        assert slope == pytest.approx(-1, abs=0.15)
    # ± SE error bars on every measured point: none at B = 1 (exact), a few per cent of the value elsewhere
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 2 and all(c.has_yerr for c in bars)
    for c, ln in zip(bars, measured):
        v = np.asarray(ln.get_ydata(), float)
        half = np.array([abs(seg[1, 1] - seg[0, 1]) / 2 for seg in c.lines[2][0].get_segments()])
        assert half[0] == 0 and np.all(half[1:] > 0) and np.all(half[1:] < 0.05 * v[1:]), half / v
    assert "1/B" in analysis.plot_gradient_noise.last_finding
    matplotlib.pyplot.close(fig)


def test_init_plot_measures_the_symmetry(init_sweep):
    fig = analysis.plot_init(init_sweep)
    assert len(fig.axes) == 4 and "identical" in fig.axes[3].get_xlabel()  # curves, val, test, spread
    finding = analysis.plot_init.last_finding
    assert "zeros" in finding and "spread" in finding and "Ranked by final validation loss" in finding
    matplotlib.pyplot.close(fig)


@pytest.fixture(scope="module")
def anneal_sweep(tmp_path_factory):
    from analysis_fixtures import make_sweep

    grid = [
        "optimizer=anneal,gd",
        "lr=0.01,0.1",
        "seed=0,1",
        "data=teacher",
        "batch_size=full",
        "sampling=shuffle_once",  # as the study: a fixed full batch, so annealing reuses its last loss
        "model.hidden=[4]",
        "epochs=60",
    ]
    return make_sweep(tmp_path_factory.mktemp("anneal"), "anneal", grid, "disabled")


def test_annealing_is_charged_in_forward_pass_equivalents(anneal_sweep, tmp_path):
    """A gradient step is a forward and a backward pass (about 2 forwards): 3 per full-batch step; an annealing step
    on a fixed full batch evaluates only its proposal: 1. The same steps cost gd three times what they cost
    annealing."""
    fig = analysis.plot_annealing(anneal_sweep)
    assert fig is not None, analysis.plot_annealing.last_skip
    left = fig.axes[0]
    assert "forward-pass equivalents" in left.get_xlabel() and "loss evaluations" not in left.get_xlabel()
    lines = {ln.get_label().split(" ")[0]: ln for ln in left.get_lines()}
    assert set(lines) == {"anneal", "gd"}
    steps = int(analysis.Sweep(anneal_sweep).runs["step"].max())
    assert max(lines["gd"].get_xdata()) == pytest.approx(3 * steps)
    assert max(lines["anneal"].get_xdata()) == pytest.approx(steps)
    finding = analysis.plot_annealing.last_finding
    assert finding.startswith("Annealing at its best proposal scale lr ") and "gd (lr " in finding
    assert "forward-pass equivalents (1 per step; a gradient step costs 3" in finding
    matplotlib.pyplot.close(fig)
    assert analysis.plot_annealing(anneal_sweep, out=tmp_path / "a.png").exists()


def test_annealing_skips_without_anneal(small_sweep):
    assert analysis.plot_annealing(small_sweep) is None
    assert "anneal" in analysis.plot_annealing.last_skip


def test_a_config_whose_every_run_blew_up_before_a_finite_loss_stays_in_the_legend():
    import pandas as pd

    from sweep.analysis._common import new_figure
    from sweep.analysis.learning_curves import draw_curves

    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "lr": [0.1, 1.0, 1.0],
            "seed": [0, 0, 1],
            "status": ["done", "diverged", "diverged"],
        }
    )
    hist = pd.DataFrame({"run_id": ["a", "a", "b"], "epoch": [1.0, 2.0, 1.0], "train_loss": [1.0, 0.5, np.nan]})
    fig, axes = new_figure()
    draw_curves(axes[0][0], hist, runs, ["lr"], "train_loss")
    labels = axes[0][0].get_legend_handles_labels()[1]
    assert labels == ["0.1", "1 (2/2 diverged, no finite loss)"]
    matplotlib.pyplot.close(fig)


def test_schedules_finding_ranks_each_schedule_at_its_best_setting_on_validation(small_sweep):
    fig = analysis.plot_schedules(small_sweep)
    finding = analysis.plot_schedules.last_finding
    assert finding.startswith("Ranked by validation loss, each schedule at its best setting: ")
    assert "constant at " in finding and "cosine at " in finding and "(n=2)" in finding
    # lr=8 diverges for adam: no schedule is shown at a setting where a seed blew up
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert labels and not any("lr=8" in t for t in labels)
    matplotlib.pyplot.close(fig)


def _fabricated_optimizer_sweep(tmp_path):
    """sgd and adam × lr 0.01, 0.1 × 2 seeds, made up: for sgd the validation-best rate (0.1) is not the
    test-best one (0.01); adam's lr 0.1 collapsed in one seed."""
    import pandas as pd

    rows, hist = [], []
    # (optimizer, lr) -> (final val loss, final test loss, final test acc)
    table = {
        ("sgd", 0.01): (0.60, 0.30, 0.90),
        ("sgd", 0.1): (0.40, 0.50, 0.99),  # near 1: a band reaching past it
        ("adam", 0.01): (0.50, 0.45, 0.80),
        ("adam", 0.1): (0.20, 0.20, 0.95),
    }
    for (opt, lr), (val, test, acc) in table.items():
        for seed in (0, 1):
            rid = f"{opt}-{lr}-{seed}"
            status = "collapsed" if (opt, lr, seed) == ("adam", 0.1, 1) else "done"
            d = 0.01 * seed
            rows.append(
                {"run_id": rid, "optimizer.name": opt, "lr": lr, "seed": seed, "status": status,
                 "final_val_loss": val + d, "final_test_loss": test + d, "final_test_acc": acc - d}
            )  # fmt: skip
            for epoch in (1.0, 2.0):
                f = 2.0 if epoch == 1 else 1.0
                hist.append(
                    {"run_id": rid, "epoch": epoch, "val_loss": f * (val + d), "test_loss": f * (test + d),
                     "test_acc": acc - d - 0.1 * (f - 1), "train_loss": f}
                )  # fmt: skip
    runs = pd.DataFrame(rows)
    runs.attrs["swept"] = ["optimizer.name", "lr", "seed"]
    sw = analysis.Sweep(tmp_path, runs=runs)
    sw._history = pd.DataFrame(hist)
    return sw


def test_tuned_draws_each_optimizer_at_its_validation_best_rate_not_its_test_best(tmp_path):
    sw = _fabricated_optimizer_sweep(tmp_path)
    fig = analysis.plot_tuned(sw)
    assert fig is not None, analysis.plot_tuned.last_skip
    val_ax, acc_ax = fig.axes[0], fig.axes[1]
    assert "validation loss" in val_ax.get_ylabel() and "accuracy" in acc_ax.get_ylabel()
    lines = {ln.get_label(): ln for ln in val_ax.get_lines() if not ln.get_label().startswith("_")}
    # sgd: val-best 0.1 (test-best would be 0.01); adam: 0.1 has a collapsed seed, so the clean 0.01
    assert set(lines) == {"sgd (lr 0.1)", "adam (lr 0.01)"}, lines
    np.testing.assert_allclose(lines["sgd (lr 0.1)"].get_ydata(), [0.81, 0.405])  # mean over both seeds
    acc = {ln.get_label(): ln for ln in acc_ax.get_lines() if not ln.get_label().startswith("_")}
    np.testing.assert_allclose(acc["sgd (lr 0.1)"].get_ydata(), [0.885, 0.985])
    lo, hi = acc_ax.get_ylim()
    assert 0 <= lo < hi <= 1  # the ± SE band of 0.985 ± 0.005 and the margins stop at 1
    finding = analysis.plot_tuned.last_finding
    assert "**sgd** at lr 0.1: 0.405 ± 0.005 (n=2)" in finding
    assert "**adam** at lr 0.01: 0.505 ± 0.005 (n=2)" in finding
    assert "Best: **sgd**, separated from the next (adam)" in finding
    matplotlib.pyplot.close(fig)


def test_tuned_names_no_best_within_the_ses_and_counts_seeds_that_did_not_finish(tmp_path):
    sw = _fabricated_optimizer_sweep(tmp_path)
    adam = sw.runs["optimizer.name"] == "adam"
    sw.runs.loc[adam, "final_val_loss"] = sw.runs.loc[adam, "final_val_loss"] - 0.1  # adam at 0.01: 0.405, as sgd
    fig = analysis.plot_tuned(sw)
    assert "No single best: sgd and adam are within their SEs" in analysis.plot_tuned.last_finding
    matplotlib.pyplot.close(fig)
    sw = _fabricated_optimizer_sweep(tmp_path)
    runs = sw.runs
    runs.loc[runs["run_id"] == "sgd-0.1-1", "status"] = "diverged"
    sw.runs = runs[~((runs["optimizer.name"] == "sgd") & (runs["lr"] == 0.01))]  # sgd has nothing cleaner
    fig = analysis.plot_tuned(sw)
    assert "sgd (lr 0.1, n=1/2)" in fig.axes[1].get_legend_handles_labels()[1]
    assert "**sgd** at lr 0.1: 0.4 (n=1) (1/2 did not finish" in analysis.plot_tuned.last_finding
    matplotlib.pyplot.close(fig)


def test_tuned_skips_without_an_lr_sweep_or_a_second_optimizer(tmp_path, init_sweep):
    assert analysis.plot_tuned(init_sweep) is None
    assert "optimizer" in analysis.plot_tuned.last_skip
    sw = _fabricated_optimizer_sweep(tmp_path)
    one_lr = sw.runs[sw.runs["lr"] == 0.1].copy()
    one_lr.attrs["swept"] = ["optimizer.name", "seed"]
    assert analysis.plot_tuned(analysis.Sweep(tmp_path, runs=one_lr)) is None
    assert "lr" in analysis.plot_tuned.last_skip


def test_tuned_on_a_real_sweep_keeps_accuracy_in_the_unit_interval(small_sweep):
    fig = analysis.plot_tuned(small_sweep)
    assert fig is not None, analysis.plot_tuned.last_skip
    lo, hi = fig.axes[1].get_ylim()
    assert 0 <= lo < hi <= 1 and "accuracy" in fig.axes[1].get_ylabel()
    assert "Each optimizer at its own rate chosen on the final validation loss" in analysis.plot_tuned.last_finding
    matplotlib.pyplot.close(fig)


def test_sampling_plots_the_validation_loss_its_finding_ranks_and_test_only_beside_it(init_sweep):
    fig = analysis.plot_sampling(init_sweep)
    assert fig is not None, analysis.plot_sampling.last_skip
    curves, ranked, test = fig.axes[:3]
    assert curves.get_ylabel().startswith("validation loss")
    assert ranked.get_xlabel().startswith("final validation loss")
    sw = analysis.Sweep(init_sweep)
    done = sw.runs[sw.runs["status"] == "done"]
    scatters = [c for c in ranked.collections if isinstance(c, matplotlib.collections.PathCollection)]
    dots = np.concatenate([c.get_offsets()[:, 0] for c in scatters])
    np.testing.assert_allclose(np.sort(dots), np.sort(done["final_val_loss"].to_numpy(float)))
    assert "test" in test.get_xlabel() and "reported only" in test.get_title(loc="left")
    assert analysis.plot_sampling.last_finding.startswith("Ranked by final validation loss")
    matplotlib.pyplot.close(fig)


def test_init_plots_the_validation_loss_its_finding_ranks_and_test_only_beside_it(init_sweep):
    """The init plot drew train loss and test accuracy while its Finding ranked the validation loss."""
    fig = analysis.plot_init(init_sweep)
    assert fig is not None, analysis.plot_init.last_skip
    curves, ranked, test = fig.axes[:3]
    assert curves.get_ylabel().startswith("validation loss")
    assert ranked.get_xlabel().startswith("final validation loss")
    assert "test" in test.get_xlabel() and "reported only" in test.get_title(loc="left")
    assert "validation loss" in analysis.plot_init.last_finding
    matplotlib.pyplot.close(fig)


def test_depth_shows_why_variance_goes_with_one_over_fan_in(init_sweep):
    """The lecture's missing panel: through 10 ReLU layers He's 2/fan_in keeps the activations' scale, LeCun's
    1/fan_in halves the variance a layer, a fixed std of 1 explodes it, all-zero weights pass nothing."""
    from sweep.analysis.depth import DEPTH, WIDTH, activation_scales

    he = activation_scales("he_normal", 0.01, 1.0, "relu", WIDTH)
    lecun = activation_scales("lecun_normal", 0.01, 1.0, "relu", WIDTH)
    big = activation_scales("normal", 1.0, 1.0, "relu", WIDTH)
    assert len(he) == DEPTH and 0.8 < he[-1] / he[0] < 1.25
    np.testing.assert_allclose((lecun[-1] / lecun[0]) ** (1 / (DEPTH - 1)), 0.5**0.5, rtol=0.05)
    assert big[-1] / big[0] > 1e6
    assert activation_scales("zeros", 0.01, 1.0, "relu", WIDTH) == [0.0] * DEPTH
    fig = analysis.plot_depth(init_sweep)
    assert fig is not None, analysis.plot_depth.last_skip
    finding = analysis.plot_depth.last_finding
    assert "lecun_normal: layer 1 → 10 shrinks" in finding and "2/fan_in under ReLU" in finding, finding
    matplotlib.pyplot.close(fig)
