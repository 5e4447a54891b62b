"""What every plot shares: loading a sweep once, grouping runs into configs (every config value that differs
between runs but the seed), labels, titles that say what was swept over how many seeds, counting the runs that
blew up (diverged, collapsed: drawn and counted, never averaged), a readable style, saving, and the
`python -m` entry point."""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from sweep.results import BLOWN_UP, atomic_write

SHORT = {
    "optimizer.name": "optimizer",
    "schedule.name": "schedule",
    "init.name": "init",
    "data.name": "data",
    "model.hidden": "hidden",
    "batch_size": "batch size",
    "model.activation": "activation",
}
# Swept keys in this order in labels and groupings (the rest after, as sweep.json lists them).
PRIORITY = (
    "optimizer.name",
    "schedule.name",
    "init.name",
    "init.std",
    "init.scale",
    "sampling",
    "batch_size",
    "lr",
    "model.hidden",
)
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 130,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.titlesize": 13,
    "lines.linewidth": 1.8,
}


def _priority(key: str) -> float:
    """Where a key goes in labels and groupings: PRIORITY's order; a Hydra choice (`choices.optimizer`) right
    after the name it picks (`optimizer.name`); the rest last."""
    if key.startswith("choices."):
        return _priority(f"{key[len('choices.') :]}.name") + 0.5
    return PRIORITY.index(key) if key in PRIORITY else len(PRIORITY)


class Skip(Exception):
    """The sweep lacks what a plot needs (a swept key, histories); the plot function returns None."""


class Sweep:
    """A sweep folder's runs (one row each), loaded once; histories on first use."""

    def __init__(self, path: Path | str, runs: pd.DataFrame | None = None) -> None:
        from sweep.collect import load_runs

        self.dir = Path(path)
        self.runs = load_runs(self.dir) if runs is None else runs
        swept = list(self.runs.attrs.get("swept", []))
        self.swept: list[str] = sorted(
            swept, key=lambda k: (PRIORITY.index(k) if k in PRIORITY else len(PRIORITY), swept.index(k))
        )
        self.name: str = self.runs.attrs.get("name") or self.dir.name
        self._history: pd.DataFrame | None = None

    @property
    def history(self) -> pd.DataFrame:
        if self._history is None:
            from sweep.collect import load_history

            self._history = load_history(self.dir, self.runs)
        return self._history

    # ---- what was swept
    @property
    def config_keys(self) -> list[str]:
        """The keys that define a configuration: every config value that differs between runs but the seed
        (the swept keys first, then e.g. `choices.optimizer` or `optimizer.betas` when two presets share an
        optimizer name), so different configs are never grouped as seeds of one."""
        extra = self.runs.attrs.get("config_keys")
        keys = [k for k in self.swept if k != "seed"]
        keys += [k for k in extra or [] if k not in keys and k != "seed" and k in self.runs]
        return sorted(keys, key=lambda k: (_priority(k), keys.index(k)))

    @property
    def n_seeds(self) -> int:
        if "seed" not in self.runs or self.runs.empty:
            return 1
        if not self.config_keys:
            return int(self.runs["seed"].nunique())
        return int(self.runs.groupby(self.config_keys, dropna=False)["seed"].nunique().max())

    def has(self, key: str, min_values: int = 2) -> bool:
        return key in self.swept and key in self.runs and self.runs[key].nunique(dropna=False) >= min_values

    def need(self, *keys: str, any_of: bool = False, what: str | None = None) -> list[str]:
        """The keys that are swept; Skip when one (or, with any_of, all) is not."""
        have = [k for k in keys if self.has(k)]
        if (any_of and not have) or (not any_of and len(have) < len(keys)):
            missing = what or (" or ".join(keys) if any_of else ", ".join(k for k in keys if k not in have))
            raise Skip(f"needs {missing} swept over at least two values (swept: {', '.join(self.swept) or 'nothing'})")
        return have

    @property
    def classification(self) -> bool:
        return "final_test_acc" in self.runs and bool(self.runs["final_test_acc"].notna().any())

    @property
    def loss_unit(self) -> str:
        return "cross-entropy, nats" if self.classification else "mean squared error"

    def describe(self) -> str:
        """`swept: optimizer × lr · 3 seeds · digits, 5 epochs`."""
        keys = " × ".join(short(k) for k in self.config_keys) or "nothing but the seed"
        parts = [f"swept: {keys}", f"{self.n_seeds} seed{'s' * (self.n_seeds != 1)}"]
        r = self.runs
        if "data.name" in r and r["data.name"].nunique() == 1:
            data = str(r["data.name"].iloc[0])
            if "epochs" in r and r["epochs"].nunique() == 1:
                data += f", {r['epochs'].iloc[0]} epochs"
            parts.append(data)
        return " · ".join(parts)


def as_sweep(sweep: Sweep | Path | str) -> Sweep:
    return sweep if isinstance(sweep, Sweep) else Sweep(sweep)


# ---------------------------------------------------------------------------------------------- labels, groups
def short(key: str) -> str:
    """A column's label: `optimizer.name` -> optimizer; `choices.optimizer` (the Hydra option) -> optimizer
    option."""
    if key.startswith("choices."):
        return f"{key.split('.', 1)[1]} option"
    return SHORT.get(key, key)


def blown_up_counts(runs: pd.DataFrame) -> dict[str, int]:
    """{status: count} of the runs that blew up (diverged, collapsed), only the statuses that occur."""
    counts = runs["status"].value_counts()
    return {s: int(counts[s]) for s in BLOWN_UP if counts.get(s, 0)}


def blown_up_note(runs: pd.DataFrame, of: int | None = None) -> str:
    """`2 diverged, 1 collapsed` (`2/4 diverged, 1/4 collapsed` with of=4); "" when no run blew up."""
    return ", ".join(f"{n}/{of} {s}" if of else f"{n} {s}" for s, n in blown_up_counts(runs).items())


def blown_up_label(runs: pd.DataFrame) -> str:
    """The legend name of the ✕ marks: `diverged`, `collapsed`, or `diverged or collapsed`."""
    present = [s for s in BLOWN_UP if (runs["status"] == s).any()] or ["diverged"]
    return " or ".join(present)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _sort_key(v: Any) -> tuple:
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, math.inf, str(v))


def ordered_values(series: pd.Series) -> list:
    """Distinct values: numbers ascending; words in the order the sweep lists them."""
    vals = list(pd.unique(series.dropna()))
    if all(_sort_key(v)[0] == 0 for v in vals):
        return sorted(vals, key=_sort_key)
    return vals


def groups(df: pd.DataFrame, keys: Sequence[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """(values, rows) per combination of `keys`, in a stable, readable order; one group when keys is empty."""
    if not keys:
        return [((), df)]
    orders = [ordered_values(df[k]) for k in keys]
    rank = {k: {v: i for i, v in enumerate(o)} for k, o in zip(keys, orders)}
    out = [
        (vals if isinstance(vals, tuple) else (vals,), g)
        for vals, g in df.groupby(list(keys), sort=False, dropna=False)
    ]
    return sorted(out, key=lambda t: [rank[k].get(v, 1e9) for k, v in zip(keys, t[0])])


def class_label(cls: str) -> str:
    """A student's optimizer (`optimizer.cls`) as legends name it: its last two dotted parts, `hw1.optim.MyAdam`
    -> `optim.MyAdam` (the module and the class: enough to tell two apart, short enough for a legend)."""
    return ".".join(str(cls).split(".")[-2:])


def _custom_class(runs: pd.DataFrame | None) -> str | None:
    """The one `optimizer.cls` of the runs whose optimizer is custom, or None (none, or several: then
    `optimizer.cls` is itself a config key and labels name it)."""
    if runs is None or "optimizer.cls" not in runs or "optimizer.name" not in runs:
        return None
    classes = runs.loc[runs["optimizer.name"] == "custom", "optimizer.cls"].dropna().unique()
    return str(classes[0]) if len(classes) == 1 else None


def value_label(key: str, v: Any, runs: pd.DataFrame | None = None) -> str:
    """A config value as the user wrote it: a full batch (`full_batch` in `runs`, or a batch size that is NaN)
    as `full` (`full (1437)` where the training-set size is known), numbers without trailing zeros, and a
    student's optimizer (`optimizer.name` custom) by its class, `myopt.MyAdam` (`class_label`)."""
    if key == "optimizer.name" and v == "custom" and _custom_class(runs):
        return class_label(_custom_class(runs))
    if key == "optimizer.cls" and isinstance(v, str):
        return class_label(v)
    if key == "batch_size":
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        full = missing
        if not missing and runs is not None and "full_batch" in runs:
            full = bool(runs.loc[runs["batch_size"] == v, "full_batch"].any())
        if full:
            return "full" if missing else f"full ({fmt(float(v))})"
    if isinstance(v, (float, np.floating)) and float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return fmt(v)


def group_label(keys: Sequence[str], values: Sequence[Any], runs: pd.DataFrame | None = None) -> str:
    if not keys:
        return "all runs"
    parts = []
    named = dict(zip(keys, values))
    for k, v in zip(keys, values):
        custom = named.get("optimizer.name") == "custom" and isinstance(named.get("optimizer.cls"), str)
        if custom and k == "optimizer.cls":
            continue  # the optimizer part below names the class already
        text = class_label(named["optimizer.cls"]) if custom and k == "optimizer.name" else value_label(k, v, runs)
        if k == "init.name" and runs is not None and v == "normal" and "init.std" in runs:
            stds = runs.loc[runs["init.name"] == v, "init.std"].unique()
            if len(stds) == 1 and "init.std" not in keys:
                text = f"normal (σ={fmt(stds[0])})"
        parts.append(text if len(keys) == 1 else f"{short(k)}={text}")
    return ", ".join(parts)


def legend_title(keys: Sequence[str]) -> str | None:
    return short(keys[0]) if len(keys) == 1 else None


def colors(n: int) -> list:
    """n distinct categorical colours for unordered values such as optimizers: tab10, tab20 up to twenty, and
    beyond that n evenly spaced colours of the `turbo` rainbow, so that no colour ever repeats (neighbours get
    alike: past ten groups, label the rows or colour by a coarser key, as `restarts` does)."""
    if n > 20:
        cmap = plt.get_cmap("turbo")
        return [cmap(x) for x in np.linspace(0.05, 0.95, n)]
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i) for i in range(n)]


SEQUENTIAL = "viridis"


def sequential_colors(n: int) -> list:
    """n colours of the SEQUENTIAL colormap, dark to light in value order; its pale yellow end is left out
    (unreadable on white)."""
    cmap = plt.get_cmap(SEQUENTIAL)
    return [cmap(x) for x in np.linspace(0.0, 0.85, n)] if n > 1 else [cmap(0.0)]


def is_ordered(keys: Sequence[str], runs: pd.DataFrame) -> bool:
    """Whether the groups of `keys` have an order worth a sequential colormap: one key whose values are all
    numbers (lr, batch size, init.std, ...); several keys or words (optimizers) are categories."""
    if len(keys) != 1 or keys[0] not in runs:
        return False
    vals = runs[keys[0]].dropna()
    return len(vals) > 0 and all(_sort_key(v)[0] == 0 and not isinstance(v, bool) for v in vals)


def palette(keys: Sequence[str], runs: pd.DataFrame, n: int | None = None) -> list:
    """The colours of the groups of `keys` (in `groups` order): sequential (viridis) for an ordered key,
    categorical otherwise."""
    n = len(groups(runs, keys)) if n is None else n
    return sequential_colors(n) if is_ordered(keys, runs) else colors(n)


# ---------------------------------------------------------------------------------------------- the aggregate
AGGREGATE = "mean ± SE"  # what every plot and the report draw: mean and standard error over finished seeds


def mean_se(values: Any) -> tuple[float, float, int]:
    """(mean, standard error = sample std / √n, n) of the finite values; SE is NaN for n < 2 (one seed has no
    spread to estimate), mean NaN for n = 0."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan, n


def seed_row(
    ax, y: float, values: np.ndarray, color, rng: np.random.Generator, of: int | None = None
) -> tuple[float, float, int]:
    """One row of a per-seed plot at height y: each finished seed's value as a jittered dot, their mean as a bar
    with ± SE (when n > 1). `of`, the seeds run: a mean of fewer shows `n=1/3` beside it, and the survivors of a
    configuration that mostly blew up (fewer than half finished) are hollow dots, so that a lucky seed never
    passes for a robust configuration. Returns `mean_se(values)`."""
    m, se, n = mean_se(values)
    hollow = of is not None and 2 * n < of
    face = "none" if hollow else color
    jitter = y + rng.uniform(-0.13, 0.13, len(values))
    ax.scatter(values, jitter, facecolors=face, edgecolors=color, s=26, alpha=0.85, zorder=3, linewidths=1.2)
    ax.plot([m] * 2, [y - 0.32, y + 0.32], color=color, linewidth=2.5, zorder=4)
    if not np.isnan(se):
        ax.errorbar(m, y, xerr=se, color=color, capsize=4, linewidth=1.6, zorder=4)
    if of is not None and 0 < n < of:
        ax.annotate(f"n={n}/{of}", (m, y + 0.32), xytext=(0, 1), textcoords="offset points", ha="center",
                    va="bottom", fontsize=8, color=color)  # fmt: skip
    return m, se, n


def mean_se_by(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """`mean_se` of `y` at each value of `x` (sorted), as columns mean, se, n; NaN rows of y ignored."""
    d = df[[x, y]].dropna()
    if d.empty:
        return pd.DataFrame(columns=["mean", "se", "n"], dtype=float)
    g = d.groupby(x, sort=True)[y]
    out = pd.DataFrame({"mean": g.mean(), "n": g.count()})
    out["se"] = g.std(ddof=1) / np.sqrt(out["n"])  # NaN where n == 1
    return out[["mean", "se", "n"]]


def se_band(ax, x, mean, se, color, floor: float | None = None) -> None:
    """Shade mean ± SE (nothing where SE is unknown); `floor` keeps the band positive on a log axis."""
    mean, se = np.asarray(mean, float), np.asarray(se, float)
    lo, hi = mean - se, mean + se
    if floor is not None:
        lo = np.maximum(lo, floor)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


# ------------------------------------------------------------------------------------------ coincident curves
# Curves within OVERLAP_RTOL of each other are drawn so that both show; within IDENTICAL_RTOL (float rounding:
# a student's correct Adam against torch's, in float32 over many steps) the legend says they are the same.
OVERLAP_RTOL = 1e-2
IDENTICAL_RTOL = 1e-6
HALO_WIDTH = 4.5  # the first of coinciding curves, drawn wide under the others


class Coincident:
    """The curves already drawn on one axes, so that a later one lying on an earlier one is drawn narrower on
    top of it (the earlier widened into a halo) and labelled `(identical to X)` when equal to rounding."""

    def __init__(self) -> None:
        self.drawn: list[tuple[str, np.ndarray, np.ndarray, Any]] = []  # (label, x, y, Line2D)

    def _on(self, x: Any, y: Any, rtol: float) -> list[tuple[str, np.ndarray, np.ndarray, Any]]:
        x, y = np.asarray(x, float), np.asarray(y, float)
        return [
            d
            for d in self.drawn
            if len(d[1]) == len(x)
            and np.array_equal(d[1], x)
            and np.allclose(d[2], y, rtol=rtol, atol=0, equal_nan=True)
            and np.isfinite(y).any()
        ]

    def style(self, x: Any, y: Any, label: str) -> tuple[str, dict]:
        """(label, plot kwargs) for a curve about to be drawn: `(identical to X)` added when it equals an earlier
        curve X to IDENTICAL_RTOL; a narrower line above the curves it lies on (to OVERLAP_RTOL), whose first
        is widened to HALO_WIDTH, so that every one of them shows."""
        under = self._on(x, y, OVERLAP_RTOL)
        if not under:
            return label, {}
        first = under[0][3]
        first.set_linewidth(max(first.get_linewidth(), HALO_WIDTH))
        width = min(d[3].get_linewidth() for d in under) * 0.45
        same = self._on(x, y, IDENTICAL_RTOL)
        if same and label:
            label = f"{label} (identical to {same[0][0]})"
        return label, {"linewidth": width, "zorder": 2.5 + 0.01 * len(self.drawn)}

    def add(self, x: Any, y: Any, label: str, line: Any) -> None:
        self.drawn.append((label, np.asarray(x, float), np.asarray(y, float), line))


# ---------------------------------------------------------------------------------------------- figures
def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.0, height: float = 4.2, **kw):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained", **kw
        )
    return fig, axes


def legend_outside(ax, title: str | None = None, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            title=title,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
            frameon=False,
            **kw,
        )


class _PlainLogFormatter(matplotlib.ticker.LogFormatterSciNotation):
    """Label the ticks the default log formatter labels, as plain numbers (0.4, 2, 1e-05) not 4×10⁻¹."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def log_y(ax) -> None:
    """A log y axis labelled in plain numbers; spanning less than a decade, its minor ticks (0.2, 0.3, ...) are
    labelled too, so the axis never shows a lone `1`. Turn off minor x ticks with `no_minor_x`, never
    `ax.minorticks_off()` (it would take these away too)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLogFormatter())
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def log_x(ax, base: float = 10) -> None:
    """A continuous log x axis in plain numbers (minor ticks labelled below a decade), as `log_y`."""
    ax.set_xscale("log", base=base)
    ax.xaxis.set_major_formatter(_PlainLogFormatter(base=base))
    ax.xaxis.set_minor_formatter(_PlainLogFormatter(base=base, labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def no_minor_x(ax) -> None:
    """No minor ticks on the x axis only (the y axis keeps its labelled minor ticks)."""
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def fit_title(ax, text: str, width_in: float | None = None, **kw) -> None:
    """A left-aligned axes title wrapped to the axes' width (about 0.09 in per character at 12 pt), so that
    neighbouring titles never run into each other."""
    import textwrap

    fig = ax.figure
    # before layout the axes' position is its grid cell; a legend or labels beside it take about a quarter
    width_in = width_in or 0.75 * ax.get_position().width * fig.get_figwidth()
    size = kw.get("fontsize") or plt.rcParams["axes.titlesize"]
    size = size if isinstance(size, (int, float)) else 12
    chars = max(20, int(width_in / (0.0075 * size)))
    ax.set_title(textwrap.fill(text, chars), loc="left", **kw)


MIN_LOG_SPAN = 4.0  # a log loss axis spans at least this factor: a flat line at 2.303 must look flat, not a slope


def unit_interval(ax, axis: str = "y") -> None:
    """Clip an accuracy axis to [0, 1] (call after drawing): padding or room made for marks never shows an
    accuracy of -0.2 or 1.1."""
    get, set_ = (ax.get_ylim, ax.set_ylim) if axis == "y" else (ax.get_xlim, ax.set_xlim)
    lo, hi = get()
    set_(max(lo, 0.0), min(hi, 1.0))


def share_log_y(axes: Sequence, min_span: float = MIN_LOG_SPAN) -> None:
    """One y range for all `axes` (log scale; facets of one figure compared by eye), spanning at least a factor
    `min_span`, widened evenly on the log scale: autoscaled alone, a flat curve fills its facet and looks like
    a trend."""
    lims = [ax.get_ylim() for ax in axes if ax.has_data()]
    if not lims:
        return
    lo, hi = min(a for a, _ in lims), max(b for _, b in lims)
    if lo > 0 and hi / lo < min_span:
        mid = math.sqrt(lo * hi)
        lo, hi = mid / math.sqrt(min_span), mid * math.sqrt(min_span)
    for ax in axes:
        ax.set_ylim(lo, hi)


def log_band_floor(values: np.ndarray) -> float:
    pos = values[np.isfinite(values) & (values > 0)]
    return float(pos.min()) * 0.5 if len(pos) else 1e-12


def save(fig, out: Path | str | None):
    if out is None:
        return fig
    out = Path(out)
    fmt_ = out.suffix.lstrip(".").lower() or "png"
    try:
        with plt.rc_context(STYLE):  # a reader never sees half a PNG (a report being rewritten)
            atomic_write(out, lambda f: fig.savefig(f, format=fmt_, bbox_inches="tight", facecolor="white"))
    finally:
        plt.close(fig)
    return out


# ---------------------------------------------------------------------------------------------- plot functions
def plot_function(name: str) -> Callable:
    """Decorate `fn(sweep: Sweep, **kw) -> Figure`: accept a path or Sweep, return the Figure (or the saved path
    when out= is given), or None when the sweep lacks what the plot needs (the reason in fn.last_skip). The
    finding the figure states in words (`analysis._findings.set_finding`) is in fn.last_finding."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(sweep: Sweep | Path | str, out: Path | str | None = None, **kw):
            sw = as_sweep(sweep)
            wrapper.last_skip = None
            wrapper.last_finding = None
            try:
                with plt.rc_context(STYLE):
                    fig = fn(sw, **kw)
            except Skip as e:
                wrapper.last_skip = str(e)
                return None
            wrapper.last_finding = getattr(fig, "sweep_finding", None)  # analysis._findings.set_finding
            return save(fig, out)

        wrapper.plot_name = name
        wrapper.last_skip = None
        wrapper.last_finding = None
        return wrapper

    return deco


def cli(fn: Callable, argv: Sequence[str] | None = None) -> None:
    """`python -m sweep.analysis.<name> SWEEP [-o out.png]` (default: SWEEP/report/<name>.png)."""
    p = argparse.ArgumentParser(
        prog=f"python -m sweep.analysis.{fn.plot_name}", description=(fn.__doc__ or "").strip().splitlines()[0]
    )
    p.add_argument("sweep", type=Path, help="the sweep folder (out_dir/<name>)")
    p.add_argument("-o", "--out", type=Path, help=f"the PNG to write (default SWEEP/report/{fn.plot_name}.png)")
    a = p.parse_args(list(argv) if argv is not None else None)
    from sweep.collect import sweep_dir_problem

    problem = sweep_dir_problem(a.sweep, f"python -m sweep.analysis.{fn.plot_name}")
    if problem:  # never write SWEEP/report/ into a folder that is not a sweep
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    out = a.out or a.sweep / "report" / f"{fn.plot_name}.png"
    path = fn(a.sweep, out=out)
    if path is None:
        print(f"{fn.plot_name}: skipped: {fn.last_skip}")
    else:
        print(path)


def note_right(ax, y: float, text: str, color: str = "firebrick", fontsize: int = 8) -> None:
    """A note just right of the axes at data height y (the runs of a row that did not finish, a spread)."""
    ax.annotate(
        text,
        (1.0, y),
        xycoords=("axes fraction", "data"),
        xytext=(4, 0),
        textcoords="offset points",
        va="center",
        fontsize=fontsize,
        color=color,
    )
