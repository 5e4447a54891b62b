"""analysis: every plot draws from a real sweep (non-trivial PNG, titles that say what was swept over how many
seeds, labelled axes, log lr axis, diverged runs marked), skips cleanly when its key was not swept, and runs as
`python -m sweep.analysis.<name>`."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import matplotlib.image
import matplotlib.ticker
import numpy as np
import pytest
from conftest import REPO

from sweep import analysis

ON_SMALL = ["lr_sensitivity", "learning_curves", "batch_size", "restarts", "schedules"]
ON_INIT = ["learning_curves", "init", "sampling", "restarts"]

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep


@pytest.fixture(scope="module")
def small(small_sweep):
    return analysis.Sweep(small_sweep)


@pytest.fixture(scope="module")
def inits(init_sweep):
    return analysis.Sweep(init_sweep)


def assert_good_png(path, min_kb: float = 20):
    img = matplotlib.image.imread(path)
    h, w = img.shape[:2]
    assert w >= 700 and h >= 350, (w, h)
    assert path.stat().st_size > min_kb * 1024
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not a blank canvas
    assert (rgb < 0.5).mean() > 0.005  # has dark ink (text, lines)


def _texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [ax.get_title(loc="left"), ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return "\n".join(parts)


@pytest.mark.parametrize("name", ON_SMALL)
def test_plots_of_the_small_sweep(small, name, tmp_path):
    fn = analysis.PLOTS[name]
    fig = fn(small)
    assert isinstance(fig, matplotlib.figure.Figure), fn.last_skip
    text = _texts(fig)
    assert "2 seeds" in text and "swept:" in text  # what was swept, over how many seeds
    data_axes = [ax for ax in fig.axes if ax.has_data()]
    left = min(ax.get_position().x0 for ax in data_axes)
    bottom = min(ax.get_position().y0 for ax in data_axes)
    assert all(ax.get_ylabel() for ax in data_axes if ax.get_position().x0 == left), name
    assert all(ax.get_xlabel() for ax in data_axes if ax.get_position().y0 == bottom), name  # rows share x
    assert "(cross-entropy, nats)" in text or "(s)" in text  # units
    matplotlib.pyplot.close(fig)
    out = fn(small, out=tmp_path / f"{name}.png")
    assert out == tmp_path / f"{name}.png"
    assert_good_png(out)


@pytest.mark.parametrize("name", ON_INIT)
def test_plots_of_the_init_sweep(inits, name, tmp_path):
    out = analysis.PLOTS[name](inits, out=tmp_path / f"{name}.png")
    assert out is not None, analysis.PLOTS[name].last_skip
    assert_good_png(out)


@pytest.mark.parametrize(
    "name, sweep, key",
    [
        ("init", "small", "init"),
        ("sampling", "small", "sampling"),
        ("lr_sensitivity", "inits", "lr"),
        ("batch_size", "inits", "batch"),
        ("schedules", "inits", "schedule"),
    ],
)
def test_skips_cleanly_without_its_swept_key(name, sweep, key, small, inits, tmp_path):
    fn = analysis.PLOTS[name]
    assert fn(small if sweep == "small" else inits, out=tmp_path / "x.png") is None
    assert key in fn.last_skip and "swept" in fn.last_skip
    assert not (tmp_path / "x.png").exists()


def test_lr_sensitivity_log_lr_axis_and_diverged_marks(small):
    fig = analysis.plot_lr_sensitivity(small)
    loss_ax = fig.axes[0]
    assert loss_ax.get_xscale() == "log" and loss_ax.get_yscale() == "log"
    assert "learning rate" in loss_ax.get_xlabel()
    # lr=8 diverges for adam in every seed: an x marker at lr=8
    marks = [
        c
        for ax in fig.axes
        for c in ax.collections
        if c.get_offsets().size and np.allclose(np.asarray(c.get_offsets())[:, 0], 8.0)
    ]
    assert marks
    legend = fig.axes[-1].get_legend()
    assert legend is not None and any("diverged" in t.get_text() for t in legend.get_texts())
    labels = [t.get_text() for t in legend.get_texts()]
    assert any("sgd" in t for t in labels) and any("adam" in t for t in labels)
    matplotlib.pyplot.close(fig)


def test_learning_curves_median_band_and_log_loss(small):
    fig = analysis.plot_learning_curves(small)
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert axes and all(ax.get_yscale() == "log" for ax in axes)
    assert "mean ± SE" in fig._suptitle.get_text() and "dashed" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)


def test_init_plot_names_the_too_large_normal(inits):
    fig = analysis.plot_init(inits)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert any("zeros" in t for t in labels) and any("normal (σ=1)" in t for t in labels)
    matplotlib.pyplot.close(fig)


def test_accepts_a_path_and_returns_a_figure(small_sweep):
    fig = analysis.plot_restarts(str(small_sweep))
    assert isinstance(fig, matplotlib.figure.Figure)
    matplotlib.pyplot.close(fig)


def test_agg_backend():
    assert matplotlib.get_backend().lower() == "agg"


@pytest.mark.parametrize("name, drawn", [("lr_sensitivity", True), ("sampling", False)])
def test_python_dash_m(small_sweep, tmp_path, name, drawn):
    out = tmp_path / "p.png"
    p = subprocess.run(
        [sys.executable, "-m", f"analysis.{name}", str(small_sweep), "-o", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "RuntimeWarning" not in p.stderr
    if drawn:
        assert p.stdout.strip() == str(out)
        assert_good_png(out)
    else:
        assert "skipped" in p.stdout and not out.exists()


# ------------------------------------------------------------------------------------------ readable plots
def _frame_sweep(tmp_path, runs, swept):
    """An analysis.Sweep over a hand-made run frame (no history: for the plots that read final metrics)."""
    import pandas as pd

    runs = pd.DataFrame(runs)
    runs.attrs.update(swept=swept, config_keys=[k for k in swept if k != "seed"], name="hand")
    return analysis.Sweep(tmp_path, runs)


def _visible_labels(axis, minor):
    lo, hi = sorted(axis.get_view_interval())
    ticks = axis.get_minor_ticks() if minor else axis.get_major_ticks()
    return [t.label1.get_text() for t in ticks if t.label1.get_text() and lo <= t.get_loc() <= hi]


def test_log_y_under_a_decade_labels_its_minor_ticks(tmp_path):
    """Losses between 0.3 and 0.5: the log axis shows 0.3, 0.4, 0.5, ..., never a lone `1` or nothing."""
    rng = np.random.default_rng(0)
    rows = [
        {"run_id": f"r{i}", "lr": lr, "seed": s, "status": "done", "final_test_loss": 0.3 + 0.2 * rng.random()}
        for i, (lr, s) in enumerate((lr, s) for lr in (0.01, 0.1, 1.0) for s in range(3))
    ]
    fig = analysis.plot_lr_sensitivity(_frame_sweep(tmp_path, rows, ["lr", "seed"]))
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_yscale() == "log"
    labels = _visible_labels(ax.yaxis, minor=True) + _visible_labels(ax.yaxis, minor=False)
    assert len(labels) >= 2, labels
    matplotlib.pyplot.close(fig)


def test_random_search_learning_rates_get_a_continuous_log_axis(tmp_path):
    """40 distinct rates (random search): decade ticks on a continuous log axis, not one label per rate."""
    lrs = 10 ** np.random.default_rng(1).uniform(-4, 0, 40)
    rows = [
        {"run_id": f"r{i}", "lr": lr, "seed": 0, "status": "done", "final_test_loss": 1 + lr}
        for i, lr in enumerate(lrs)
    ]
    fig = analysis.plot_lr_sensitivity(_frame_sweep(tmp_path, rows, ["lr", "seed"]))
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_xscale() == "log"
    assert not isinstance(ax.xaxis.get_major_locator(), matplotlib.ticker.FixedLocator)
    labels = _visible_labels(ax.xaxis, minor=False)
    assert 2 <= len(labels) <= 8, labels
    matplotlib.pyplot.close(fig)


def test_ordered_values_get_a_sequential_colormap(tmp_path):
    """Lines per learning rate (ordered) are coloured along viridis, not the categorical cycle."""
    from matplotlib.colors import to_rgba

    from sweep.analysis._common import sequential_colors

    rows = [
        {
            "run_id": f"r{i}",
            "lr": lr,
            "batch_size": float(bs),
            "full_batch": False,
            "seed": s,
            "status": "done",
            "final_test_loss": 1 / bs + lr + s / 100,
            "wall_s": 1.0,
        }
        for i, (lr, bs, s) in enumerate((lr, bs, s) for lr in (0.01, 0.1, 1.0) for bs in (16, 64) for s in (0, 1))
    ]
    fig = analysis.plot_batch_size(_frame_sweep(tmp_path, rows, ["lr", "batch_size", "seed"]))
    got = [to_rgba(ln.get_color()) for ln in fig.axes[0].get_lines()]
    assert got == [to_rgba(c) for c in sequential_colors(3)]
    matplotlib.pyplot.close(fig)


def _title_boxes(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    texts = [fig._suptitle] if fig._suptitle else []
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
    return [t.get_window_extent(r) for t in texts if t.get_text()]


@pytest.mark.parametrize("name", ON_INIT)
def test_titles_never_collide(inits, name):
    fig = analysis.PLOTS[name](inits)
    boxes = _title_boxes(fig)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (name, a, b)
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("name", ON_SMALL)
def test_every_plot_states_its_aggregate_mean_se(small, name):
    fig = analysis.PLOTS[name](small)
    assert "± SE" in _texts(fig), name
    matplotlib.pyplot.close(fig)


# ------------------------------------------------------------------------------------------ axes and colours
def _axis_by_label(fig, text, axis="y"):
    return next(ax for ax in fig.axes if text in (ax.get_ylabel() if axis == "y" else ax.get_xlabel()))


def test_accuracy_axes_stay_within_zero_and_one(small):
    """lr=8 diverges: room made below the accuracy curve for its ✕ marks never shows an accuracy below 0."""
    fig = analysis.plot_lr_sensitivity(small)
    lo, hi = _axis_by_label(fig, "accuracy").get_ylim()
    assert 0 <= lo < hi <= 1
    matplotlib.pyplot.close(fig)
    fig = analysis.plot_restarts(small)
    lo, hi = _axis_by_label(fig, "accuracy", axis="x").get_xlim()
    assert 0 <= lo < hi <= 1
    matplotlib.pyplot.close(fig)


def _row_colours(fig):
    """The colour of each row's seed dots in the first axes of a restarts figure, top row first."""
    from matplotlib.colors import to_hex

    dots = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.PathCollection)]
    dots.sort(key=lambda c: -float(np.mean(np.asarray(c.get_offsets())[:, 1])))
    return [to_hex(c.get_facecolor()[0]) for c in dots]


def _configs(tmp_path, optimizers, lrs):
    rows = [
        {"run_id": f"r{i}", "optimizer.name": o, "lr": lr, "seed": s, "status": "done",
         "final_test_loss": 1 + lr + s / 10, "final_val_loss": 1 + lr + s / 10}
        for i, (o, lr, s) in enumerate((o, lr, s) for o in optimizers for lr in lrs for s in (0, 1))
    ]  # fmt: skip
    return _frame_sweep(tmp_path, rows, ["optimizer.name", "lr", "seed"])


def test_many_restart_rows_never_repeat_a_colour(tmp_path):
    """25 optimizers (one categorical key): 25 rows, 25 different colours (tab20 would repeat after 20)."""
    fig = analysis.plot_restarts(_configs(tmp_path, [f"opt{i}" for i in range(25)], [0.1]).runs.pipe(
        lambda r: _frame_sweep(tmp_path, r.to_dict("records"), ["optimizer.name", "seed"])))  # fmt: skip
    cols = _row_colours(fig)
    assert len(cols) == 25 and len(set(cols)) == 25
    matplotlib.pyplot.close(fig)


def test_many_restart_rows_of_several_keys_are_coloured_by_the_first_with_a_legend(tmp_path):
    """3 optimizers x 11 rates: 30 rows coloured by optimizer (3 colours a legend names), not 30 alike hues."""
    fig = analysis.plot_restarts(_configs(tmp_path, ["sgd", "adam", "rmsprop"], list(np.geomspace(1e-3, 1, 11))))
    cols = _row_colours(fig)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    by_opt = {}
    for label, c in zip(labels, cols):
        by_opt.setdefault(label.split(",")[0], set()).add(c)
    assert len(cols) == 30 and all(len(v) == 1 for v in by_opt.values()) and len(set(cols)) == 3
    (legend,) = fig.legends
    assert sorted(t.get_text() for t in legend.get_texts()) == ["adam", "rmsprop", "sgd"]
    assert "optimizer" in legend.get_title().get_text()
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("name", sorted(set(ON_SMALL + ON_INIT + ["gradient_noise"])))
def test_legends_are_at_least_10_pt(small, inits, name):
    sw = inits if name in ("init", "sampling") else small
    fig = analysis.PLOTS[name](sw)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends or name in ("restarts", "init", "sampling"), name  # these name their rows on the axis
    for lg in legends:
        assert all(t.get_fontsize() >= 10 for t in lg.get_texts()), (name, [t.get_fontsize() for t in lg.get_texts()])
    matplotlib.pyplot.close(fig)


def test_learning_curve_facets_share_a_y_range_that_a_flat_line_cannot_shrink(tmp_path):
    """sgd stays at 2.3026 (chance) for every rate, adam learns: one row per optimizer, both rows on the same
    y range, never sgd's flat line autoscaled to fill a 0.004-wide range as if it were a trend."""
    import pandas as pd

    from sweep.analysis._common import MIN_LOG_SPAN

    lrs = [0.001, 0.003, 0.01, 0.03, 0.1]
    sw = _configs(tmp_path, ["sgd", "adam"], lrs)
    epochs = np.arange(1, 6, dtype=float)
    hist = []
    for r in sw.runs.to_dict("records"):
        flat = r["optimizer.name"] == "sgd"
        loss = 2.3026 + 0.001 * np.sin(epochs + r["seed"]) if flat else 2.3 * np.exp(-epochs * r["lr"] * 10)
        hist.append(pd.DataFrame({"run_id": r["run_id"], "epoch": epochs, "train_loss": loss, "test_loss": loss}))
    sw._history = pd.concat(hist, ignore_index=True)
    fig = analysis.plot_learning_curves(sw)
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert len(axes) == 4  # 2 optimizers x (train, test)
    titles = [ax.get_title(loc="left") for ax in axes]
    assert all(t.startswith("optimizer=") for t in titles), titles  # the title names the swept key
    for metric in ("train loss", "test loss"):
        column = [ax for ax, t in zip(axes, titles) if metric in t]
        assert len(column) == 2 and column[0].get_ylim() == column[1].get_ylim()
        lo, hi = column[0].get_ylim()
        assert hi / lo >= MIN_LOG_SPAN * 0.999
    sgd_only = _configs(tmp_path, ["sgd"], lrs)
    sgd_only._history = sw._history[sw._history["run_id"].isin(sgd_only.runs["run_id"])]
    fig2 = analysis.plot_learning_curves(sgd_only)
    lo, hi = fig2.axes[0].get_ylim()
    assert hi / lo >= MIN_LOG_SPAN * 0.999  # alone, the flat line still gets the minimum span
    matplotlib.pyplot.close(fig)
    matplotlib.pyplot.close(fig2)


# ------------------------------------------------------------------------------- a student's optimizer, plotted
def _students_sweep(tmp_path):
    """A student's class (optimizer=custom, optimizer.cls=hw1.optim.MyAdam) swept beside adam and sgd at two
    rates, 2 seeds: the student's curves equal adam's (a correct Adam), sgd's differ."""
    import pandas as pd

    rows, hist = [], []
    epochs = np.arange(1, 5, dtype=float)
    for name, cls in (("custom", "hw1.optim.MyAdam"), ("adam", None), ("sgd", None)):
        for lr in (0.01, 0.1):
            for seed in (0, 1):
                rid = f"{name}-{lr}-{seed}"
                loss = 2.3 * np.exp(-epochs * lr * (3 if name == "sgd" else 10)) + seed / 100
                rows.append({"run_id": rid, "optimizer.name": name, "optimizer.cls": cls, "lr": lr, "seed": seed,
                             "status": "done", "final_val_loss": loss[-1], "final_test_loss": loss[-1]})  # fmt: skip
                hist.append(pd.DataFrame({"run_id": rid, "epoch": epochs, "train_loss": loss, "test_loss": loss}))
    sw = _frame_sweep(tmp_path, rows, ["optimizer.name", "lr", "seed"])
    sw._history = pd.concat(hist, ignore_index=True)
    return sw


def _legend_lines(ax):
    """{legend label: Line2D} of the lines of `ax` that have a label."""
    return {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}


@pytest.mark.parametrize("name", ["learning_curves", "lr_sensitivity"])
def test_a_students_runs_are_labelled_by_their_class(tmp_path, name):
    """The legends said `custom` for every student's class: they name it, `optim.MyAdam` (its last two parts)."""
    fig = getattr(analysis, f"plot_{name}")(_students_sweep(tmp_path))
    labels = [lb for ax in fig.axes for lb in _legend_lines(ax)]
    assert labels and not [lb for lb in labels if "custom" in lb], labels
    assert any(lb.startswith("optimizer=optim.MyAdam") or lb.startswith("optim.MyAdam") for lb in labels), labels
    matplotlib.pyplot.close(fig)


def test_a_second_custom_class_is_told_apart_by_its_class(tmp_path):
    from sweep.analysis._common import group_label

    sw = _students_sweep(tmp_path)
    label = group_label(["optimizer.name", "optimizer.cls", "lr"], ("custom", "hw1.optim.MyAdam", 0.01), sw.runs)
    assert label == "optimizer=optim.MyAdam, lr=0.01"


@pytest.mark.parametrize(
    "name,mine",
    [("learning_curves", "optimizer=optim.MyAdam, lr=0.01"), ("lr_sensitivity", "optim.MyAdam")],
)
def test_curves_that_coincide_both_show_and_the_legend_says_identical(tmp_path, name, mine):
    """A student's correct Adam draws exactly under adam: the later line goes narrower on top of a wider first
    one (both visible), and its legend entry says `(identical to ...)`; a different curve (sgd) is left alone."""
    fig = getattr(analysis, f"plot_{name}")(_students_sweep(tmp_path))
    lines = _legend_lines(fig.axes[0])
    adam = lines[mine.replace("optim.MyAdam", "adam") + f" (identical to {mine})"]
    assert adam.get_linewidth() < lines[mine].get_linewidth() and adam.get_zorder() > lines[mine].get_zorder()
    assert not [lb for lb in lines if "sgd" in lb and "identical" in lb], list(lines)
    matplotlib.pyplot.close(fig)
