"""`sweep report SWEEP [-o DIR]`: every plot that applies to the sweep, and report.md, in SWEEP/report/.

report.md says what was run (command, swept keys, status counts), then a table with one row per configuration
(every config value that differs between runs but the seed, so two configs are never averaged as seeds): n (the
seeds that finished, `done`, of those run), how many diverged, collapsed or failed, and the mean ± standard error
(SE = sample std / √n) over the n finished seeds of the final test loss and accuracy, best first by
`SELECTION_METRIC`. The best configuration is bold only when it is separated from the next one by more than
their uncertainty (`separated`); otherwise the report says the top configurations are not distinguishable. Then
the plots, the plots that did not apply (and why), those left out on request (`--only`, `--skip`), the failed
runs with their error, and the corrupt runs.
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sweep.results import (
    BLOWN_UP,
    FINISHED,
    SELECTION_METRIC,
    clean_temporaries,
    folder_problem,
    lower_is_better,
    metric_name,
)

REPORT_DIR = "report"
# The metric that ranks configurations ("best" first, the bold row, best lr per schedule, best of k restarts):
# the validation split's, never test's (test is reported for what validation chose). Lower is better unless it
# is an accuracy.
# Metrics summarised per configuration in `summary_table` (mean, std, SE over the finished seeds).
SUMMARISED = ("final_val_loss", "final_val_acc", "final_test_loss", "final_test_acc", "wall_s")


def default_keys(runs: pd.DataFrame) -> list[str]:
    """The columns that define a configuration: `config_keys` of `load_runs` (every differing semantic config
    value but the seed), or for a frame made another way the swept keys but the seed."""
    keys = runs.attrs.get("config_keys")
    if keys is None:
        keys = runs.attrs.get("swept", [])
    return [k for k in keys if k != "seed" and k in runs]


def mean_std_se(values: pd.Series) -> tuple[float, float, float]:
    """(mean, sample std, standard error) of the finite values: the plots' aggregate (`analysis._common.mean_se`)
    plus the std; std and SE are NaN for fewer than two values (one seed has no spread), all NaN for none."""
    from sweep.analysis._common import mean_se

    mean, se, n = mean_se(values)
    return mean, se * math.sqrt(n) if n > 1 else math.nan, se


def summary_table(runs: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per configuration (`keys`, default: `default_keys`): runs, seeds, counts by status (`done` is n,
    the seeds averaged), and `<metric>_mean`, `_std`, `_se` over the finished (done) seeds of SUMMARISED;
    sorted best first by SELECTION_METRIC's mean (configurations with no finished seed last). Diverged,
    collapsed and failed runs are counted, never averaged."""
    from sweep.analysis._common import groups

    keys = [k for k in (default_keys(runs) if keys is None else keys) if k != "seed" and k in runs]
    rows = []
    for vals, g in groups(runs, keys):
        status = g["status"]
        ok = g[status == "done"]
        row = dict(zip(keys, vals))
        row.update(
            runs=len(g),
            seeds=int(g["seed"].nunique()) if "seed" in g else len(g),
            done=int((status == "done").sum()),
            **{s: int((status == s).sum()) for s in BLOWN_UP},
            failed=int((status == "failed").sum()),
            unfinished=int((~status.isin([*FINISHED, "failed"])).sum()),
        )
        for m in SUMMARISED:
            if m in g:
                row[f"{m}_mean"], row[f"{m}_std"], row[f"{m}_se"] = mean_std_se(ok[m])
        rows.append(row)
    df = pd.DataFrame(rows)
    by = f"{SELECTION_METRIC}_mean"
    if by in df:
        df = df.sort_values(by, ascending=lower_is_better(), na_position="last", kind="stable")
        df = df.reset_index(drop=True)
    return df


def separated(table: pd.DataFrame, metric: str = SELECTION_METRIC) -> tuple[bool, str]:
    """Whether the first (best) configuration of a `summary_table` is distinguishable from the second on
    `metric`, and a sentence saying so. The criterion: their means differ by more than the sum of their
    standard errors (the mean ± SE intervals do not overlap), which needs at least two finished seeds in each.
    With one configuration there is nothing to tell apart; with no other configuration that finished a seed,
    the best is the only result."""
    mean, se = f"{metric}_mean", f"{metric}_se"
    if mean not in table:
        return False, ""
    ranked = table[table[mean].notna()]
    if len(ranked) == 0:
        return False, "No configuration has a finished seed: nothing is ranked."
    if len(table) == 1:
        return False, "One configuration: nothing to compare."
    if len(ranked) == 1:
        return True, "The best configuration (bold) is the only one with a finished seed."
    best, nxt = ranked.iloc[0], ranked.iloc[1]
    gap = abs(float(nxt[mean]) - float(best[mean]))
    margin = float(best[se]) + float(nxt[se])
    if math.isnan(margin):
        return False, (
            "The top configurations are not distinguishable: a standard error needs at least two "
            "finished seeds per configuration, so nothing is bold."
        )
    if gap > margin:
        return True, (
            f"The best configuration (bold) is distinguishable from the next: its mean {metric_name(metric)} "
            f"differs by {gap:.3g}, more than the sum of their standard errors ({margin:.3g})."
        )
    return False, (
        f"The top configurations are not distinguishable: the best two differ in mean "
        f"{metric_name(metric)} by {gap:.3g}, within the sum of their standard errors ({margin:.3g}), "
        "so nothing is bold; more seeds would tell."
    )


def _pm(mean: float, se: float) -> str:
    """`0.3127 ± 0.012` (mean ± SE), the mean alone when SE is unknown (one seed), `-` when nothing finished."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.4g} ± {se:.2g}" if se is not None and not math.isnan(se) else f"{mean:.4g}"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(
    table: pd.DataFrame, keys: Sequence[str], classification: bool, runs: pd.DataFrame | None = None
) -> str:
    """The summary table as markdown: n as done/seeds, blow-ups counted, metrics as mean ± SE; the best row's
    SELECTION_METRIC bold only when `separated` says it is distinguishable from the next."""
    from sweep.analysis._common import short as short_key
    from sweep.analysis._common import value_label

    # a collapsed column only where a run collapsed: older sweeps keep the table they always had
    blown = [b for b in BLOWN_UP if b == "diverged" or (b in table and table[b].sum())]
    metrics = ["final_val_loss", "final_test_loss", *(["final_test_acc"] if classification else [])]
    head = [
        *(short_key(k) for k in keys),
        "n (done/seeds)",
        *blown,
        "failed",
        *(f"{metric_name(m)} (mean ± SE)" for m in metrics),
        "device time per run (s, mean share)",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * len(keys) + ["--:"] * (len(head) - len(keys))) + "|",
    ]
    bold = separated(table)[0]
    for i, r in enumerate(table.to_dict("records")):  # not iterrows: it makes counts floats (1.0/3.0)
        cells = [_md_escape(value_label(k, r[k], runs)) for k in keys]
        cells += [f"{r['done']}/{r['runs']}", *(str(r[b] or "") for b in blown), str(r["failed"] or "")]
        for m in metrics:
            text = _pm(r.get(f"{m}_mean"), r.get(f"{m}_se"))
            cells.append(f"**{text}**" if bold and i == 0 and m == SELECTION_METRIC and text != "-" else text)
        cells.append(_pm(r.get("wall_s_mean"), float("nan")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _describe(sw, record: dict) -> list[str]:
    from sweep.analysis._common import value_label

    runs = sw.runs
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    out = [f"- folder: `{sw.dir}`"]
    if record.get("created"):
        out.append(f"- created: {record['created']}")
    if record.get("argv"):
        out.append(f"- command: `sweep run {shlex.join(str(a) for a in record['argv'])}`")
    out.append(f"- swept: {', '.join(f'`{k}`' for k in sw.swept) or 'nothing'}; {sw.n_seeds} seed(s) per configuration")
    extra = [k for k in sw.config_keys if k not in sw.swept]
    if extra:  # e.g. two presets of one optimizer: their runs are different configs, not seeds of one
        out.append(
            f"- also differing between runs (kept apart, never averaged together): {', '.join(f'`{k}`' for k in extra)}"
        )
    out.append(f"- runs: {len(runs)} (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")")
    if "wall_s" in runs and runs["wall_s"].notna().any():
        total = float(runs["wall_s"].sum())
        out.append(
            f"- device time: {total:.1f} s = {total / 3600:.3g} device-hours (each run's share of its pack's "
            "wall time, summed; runs trained together share one clock, so a pack is not counted K times)"
        )
    fixed = []
    for k in (
        "data.name",
        "epochs",
        "batch_size",
        "optimizer.name",
        "lr",
        "schedule.name",
        "model.hidden",
        "init.name",
        "sampling",
    ):
        if k in runs and k not in sw.swept and runs[k].astype(str).nunique(dropna=False) == 1:
            fixed.append(f"`{k}={value_label(k, runs[k].iloc[0], runs)}`")
    if fixed:
        out.append(f"- fixed: {', '.join(fixed)}")
    return out


def choose_plots(only: Sequence[str] | None = None, skip: Sequence[str] | None = None) -> list[str]:
    """The plot names to draw, in `analysis.NAMES` order: `only` these (all when None), less `skip`. An unknown
    name raises UserError listing the valid ones."""
    from sweep.analysis import NAMES
    from sweep.errors import UserError

    for flag, names in (("--only", only), ("--skip", skip)):
        unknown = [n for n in names or () if n not in NAMES]
        if unknown:
            raise UserError(f"{flag}: unknown plot {', '.join(map(repr, unknown))}; valid plots: {', '.join(NAMES)}")
    return [n for n in NAMES if (only is None or n in only) and n not in (skip or ())]


def write_report(
    sweep_dir: Path | str,
    out_dir: Path | str | None = None,
    echo=print,
    only: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
) -> Path:
    """Draw every applicable plot (`only` those named, less those in `skip`: `choose_plots`) and write report.md
    into out_dir (default SWEEP/report); returns report.md. Bad names or folders raise before anything is
    written."""
    from sweep import analysis
    from sweep.analysis._common import Sweep, atomic_write, short, value_label
    from sweep.collect import read_sweep_record, sweep_dir_problem

    chosen = choose_plots(only, skip)
    sweep_dir = Path(sweep_dir)
    problem = sweep_dir_problem(sweep_dir, "sweep report")
    if problem:  # never write a report into a folder that is not a sweep (/usr, a run, an out_dir)
        raise ValueError(problem)
    out = Path(out_dir) if out_dir is not None else sweep_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out)  # a killed report's half-written plots (.<name>.png.<random>.tmp)
    sw = Sweep(sweep_dir)
    record = read_sweep_record(sweep_dir)
    drawn, skipped = [], []
    for name, fn in analysis.PLOTS.items():
        if name not in chosen:
            continue
        t0 = time.perf_counter()
        path = fn(sw, out=out / f"{name}.png")
        if path is None:
            skipped.append((name, fn.last_skip))
        else:
            drawn.append((name, Path(path), (fn.__doc__ or name).strip().splitlines()[0], fn.last_finding))
            echo(f"sweep: {path} ({time.perf_counter() - t0:.1f} s)")
    keys = sw.config_keys
    table = summary_table(sw.runs, keys)
    md = [f"# Sweep `{sw.name}`", "", *_describe(sw, record), ""]
    md += [
        "## Results by configuration",
        "",
        "Mean ± SE (standard error: sample std / √n) over the n seeds that finished (`done`, shown as "
        "done/seeds); diverged, collapsed and failed runs are counted, not averaged. A configuration is every "
        "config value that differs between runs but the seed. "
        f"Losses are {sw.loss_unit}. Best first by mean {metric_name(SELECTION_METRIC)}; it is bold only when its "
        "mean and the next one's differ by more than the sum of their SEs.",
        "",
    ]
    if len(table):
        md += [markdown_table(table, keys, sw.classification, sw.runs), "", separated(table)[1], ""]
    else:
        md += ["_no runs yet_", ""]
    if drawn:
        md += ["## Plots", ""]
        for name, path, doc, finding in drawn:
            md += [f"### {doc.rstrip('.')}", "", f"![{name}]({path.name})", ""]
            if finding:  # what the plot shows, in words (analysis._findings)
                md += [f"**Finding.** {finding}", ""]
    if skipped:
        md += ["## Not drawn", ""] + [f"- `{n}`: {why}" for n, why in skipped] + [""]
    unasked = [n for n in analysis.NAMES if n not in chosen]
    if unasked:  # say so, so that a reader never takes a missing plot for one that did not apply
        md += [
            "## Skipped on request",
            "",
            f"Not drawn (`--only`/`--skip`): {', '.join(f'`{n}`' for n in unasked)}.",
            "",
        ]
    failed = sw.runs[sw.runs["status"] == "failed"]
    if len(failed):
        md += ["## Failed runs", ""]
        for _, r in failed.iterrows():
            vals = ", ".join(f"{short(k)}={value_label(k, r[k], sw.runs)}" for k in [*sw.config_keys, "seed"] if k in r)
            err = str(r.get("error") or "").splitlines()[0] if r.get("error") else "see `sweep show`"
            md.append(f"- `{r['run_id']}` ({vals}): {_md_escape(err)} (`sweep show SWEEP {r['run_id']}`)")
        md.append("")
    md += _corrupt_section(sw)
    path = out / "report.md"
    text = "\n".join(md)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def _corrupt_section(sw) -> list[str]:
    """report.md lines for runs whose summary is corrupt: which file, and how to retrain them. A pack's summary
    file holds its other members too: never "delete the folder" for it; a run folder of the earlier layout may
    still be deleted to retrain the run afresh (path shell-quoted)."""
    from sweep.collect import CORRUPT
    from sweep.store import scan

    bad = sw.runs[sw.runs["status"] == CORRUPT]
    if not len(bad):
        return []
    records = scan(sw.dir)
    md = [
        "## Corrupt runs",
        "",
        "Their summary could not be read; the same `sweep run` command trains them again from their checkpoint.",
        "",
    ]
    for rid in bad["run_id"]:
        rec = records.get(rid)
        if rec is None or rec.pack is not None:
            where = rec.summary_path if rec is not None else sw.dir / rid
            md.append(f"- `{rid}`: `{_md_escape(str(where))}`")
        else:
            folder = _md_escape(shlex.quote(str(rec.legacy)))
            md.append(f"- `{rid}`: `{_md_escape(str(rec.summary_path))}` (or retrain it afresh: `rm -r {folder}`)")
    return md + [""]


def _names(text: str) -> list[str]:
    """`a,b` -> ["a", "b"] (blanks dropped)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def main(argv: Sequence[str] | None = None) -> None:

    p = argparse.ArgumentParser(
        prog="sweep report", description="Plots and a summary table (report.md) of a sweep, in SWEEP/report/."
    )
    p.add_argument("sweep", help="the sweep folder (out_dir/<name>)")
    p.add_argument("-o", "--out", type=Path, help="write into this folder instead of SWEEP/report")
    p.add_argument("--only", type=_names, metavar="PLOT[,PLOT]", help="draw only these plots (default: all)")
    p.add_argument("--skip", type=_names, metavar="PLOT[,PLOT]", help="do not draw these plots (default: none)")
    a = p.parse_args(list(argv) if argv is not None else None)
    from sweep.collect import check_sweep_dir
    from sweep.errors import UserError, fail

    try:  # a bad plot name is refused before anything is written
        choose_plots(a.only, a.skip)
    except UserError as e:
        fail(str(e))
    sweep_dir = check_sweep_dir(a.sweep, "sweep report")
    t0 = time.perf_counter()
    problem = folder_problem(a.out if a.out is not None else Path(sweep_dir) / REPORT_DIR)
    if problem:  # before drawing: nothing drawn in vain
        fail(problem + ("" if a.out is not None else " (write the report elsewhere with -o DIR)"))
    path = write_report(sweep_dir, a.out, only=a.only, skip=a.skip)
    print(f"sweep: report -> {path} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
