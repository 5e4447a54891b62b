"""`sweep report SWEEP [-o DIR]`: every plot that applies to the sweep, and report.md, in SWEEP/report/.

report.md says what was run (command, swept keys, status counts), then a table with one row per configuration
(every config value that differs between runs but the seed, so two configs are never averaged as seeds): how
many seeds, how many diverged, collapsed or failed, and the mean ± std over the seeds that finished (`done`) of
the final test loss and accuracy, best first; then the plots, the plots that did not apply (and why), the
failed runs with their error, and the runs whose files are corrupt.
"""
from __future__ import annotations

import argparse
import math
import shlex
import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from sweep.results import BLOWN_UP, FINISHED

REPORT_DIR = "report"


def default_keys(runs: pd.DataFrame) -> list[str]:
    """The columns that define a configuration: `config_keys` of `load_runs` (every differing semantic config
    value but the seed), or for a frame made another way the swept keys but the seed."""
    keys = runs.attrs.get("config_keys")
    if keys is None:
        keys = runs.attrs.get("swept", [])
    return [k for k in keys if k != "seed" and k in runs]


def summary_table(runs: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per configuration (`keys`, default: `default_keys`): runs, seeds, counts by status, and
    mean/std over the finished (done) seeds of the final metrics; sorted by mean final test loss. Diverged and
    collapsed runs are counted, never averaged."""
    import_analysis()
    from analysis._common import groups

    keys = [k for k in (default_keys(runs) if keys is None else keys) if k != "seed" and k in runs]
    rows = []
    for vals, g in groups(runs, keys):
        status = g["status"]
        ok = g[status == "done"]
        row = dict(zip(keys, vals))
        row.update(runs=len(g), seeds=int(g["seed"].nunique()) if "seed" in g else len(g),
                   done=int((status == "done").sum()),
                   **{s: int((status == s).sum()) for s in BLOWN_UP},
                   failed=int((status == "failed").sum()),
                   unfinished=int((~status.isin([*FINISHED, "failed"])).sum()))
        for m in ("final_test_loss", "final_test_acc", "best_test_loss", "wall_s"):
            if m in g:
                v = ok[m].dropna().astype(float)
                row[f"{m}_mean"] = v.mean() if len(v) else math.nan
                row[f"{m}_std"] = v.std(ddof=1) if len(v) > 1 else (0.0 if len(v) else math.nan)
        rows.append(row)
    df = pd.DataFrame(rows)
    if "final_test_loss_mean" in df:
        df = df.sort_values("final_test_loss_mean", na_position="last", kind="stable").reset_index(drop=True)
    return df


def _pm(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.4g} ± {std:.2g}" if std and not math.isnan(std) else f"{mean:.4g}"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(table: pd.DataFrame, keys: Sequence[str], classification: bool) -> str:
    from analysis._common import fmt, short

    # a collapsed column only where a run collapsed: older sweeps keep the table they always had
    blown = [b for b in BLOWN_UP if b == "diverged" or (b in table and table[b].sum())]
    head = [*(short(k) for k in keys), "done/seeds", *blown, "failed", "final test loss", "best test loss"]
    if classification:
        head.append("final test acc")
    head.append("wall time (s)")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(keys) + ["--:"] * (len(head) - len(keys)))
             + "|"]
    for i, r in enumerate(table.to_dict("records")):     # not iterrows: it makes counts floats (1.0/3.0)
        cells = [_md_escape(fmt(r[k])) for k in keys]
        seeds = f"{r['done']}/{r['runs']}"
        loss = _pm(r.get("final_test_loss_mean"), r.get("final_test_loss_std"))
        if i == 0 and loss != "-":
            loss = f"**{loss}**"
        cells += [seeds, *(str(r[b] or "") for b in blown), str(r["failed"] or ""), loss,
                  _pm(r.get("best_test_loss_mean"), r.get("best_test_loss_std"))]
        if classification:
            cells.append(_pm(r.get("final_test_acc_mean"), r.get("final_test_acc_std")))
        cells.append(_pm(r.get("wall_s_mean"), float("nan")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _describe(sw, record: dict) -> list[str]:
    runs = sw.runs
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    out = [f"- folder: `{sw.dir}`"]
    if record.get("created"):
        out.append(f"- created: {record['created']}")
    if record.get("argv"):
        out.append(f"- command: `sweep run {shlex.join(str(a) for a in record['argv'])}`")
    out.append(f"- swept: {', '.join(f'`{k}`' for k in sw.swept) or 'nothing'}; {sw.n_seeds} seed(s) per "
               "configuration")
    extra = [k for k in sw.config_keys if k not in sw.swept]
    if extra:     # e.g. two presets of one optimizer: their runs are different configs, not seeds of one
        out.append(f"- also differing between runs (kept apart, never averaged together): "
                   f"{', '.join(f'`{k}`' for k in extra)}")
    out.append(f"- runs: {len(runs)} (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")")
    fixed = []
    for k in ("data.name", "epochs", "batch_size", "optimizer.name", "lr", "schedule.name", "model.hidden",
              "init.name", "sampling"):
        if k in runs and k not in sw.swept and runs[k].astype(str).nunique() == 1:
            fixed.append(f"`{k}={runs[k].iloc[0]}`")
    if fixed:
        out.append(f"- fixed: {', '.join(fixed)}")
    return out


def import_analysis() -> bool:
    """Make `analysis` importable: it lives beside the `sweep` package in the repository (not in the wheel)."""
    import importlib
    import sys

    try:
        importlib.import_module("analysis")
        return True
    except ModuleNotFoundError:
        pass
    root = Path(__file__).resolve().parents[1]
    if (root / "analysis" / "__init__.py").exists():
        sys.path.append(str(root))
        importlib.import_module("analysis")
        return True
    return False


def write_report(sweep_dir: Path | str, out_dir: Path | str | None = None, echo=print) -> Path:
    """Draw every applicable plot and write report.md into out_dir (default SWEEP/report); returns report.md."""
    import_analysis()
    import analysis
    from analysis._common import Sweep, atomic_write, short
    from sweep.collect import read_sweep_record

    from sweep.collect import sweep_dir_problem

    sweep_dir = Path(sweep_dir)
    problem = sweep_dir_problem(sweep_dir, "sweep report")
    if problem:     # never write a report into a folder that is not a sweep (/usr, a run, an out_dir)
        raise ValueError(problem)
    out = Path(out_dir) if out_dir is not None else sweep_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    sw = Sweep(sweep_dir)
    record = read_sweep_record(sweep_dir)
    drawn, skipped = [], []
    for name, fn in analysis.PLOTS.items():
        t0 = time.perf_counter()
        path = fn(sw, out=out / f"{name}.png")
        if path is None:
            skipped.append((name, fn.last_skip))
        else:
            drawn.append((name, Path(path), (fn.__doc__ or name).strip().splitlines()[0]))
            echo(f"sweep: {path} ({time.perf_counter() - t0:.1f} s)")
    keys = sw.config_keys
    table = summary_table(sw.runs, keys)
    md = [f"# Sweep `{sw.name}`", "", *_describe(sw, record), ""]
    md += ["## Results by configuration", "",
           f"Mean ± std over the seeds that finished (`done`); diverged, collapsed and failed runs are counted, "
           "not averaged. A configuration is every config value that differs between runs but the seed. "
           f"Losses are {sw.loss_unit}. Best configuration first.", ""]
    md += [markdown_table(table, keys, sw.classification) if len(table) else "_no runs yet_", ""]
    if drawn:
        md += ["## Plots", ""]
        for name, path, doc in drawn:
            md += [f"### {doc.rstrip('.')}", "", f"![{name}]({path.name})", ""]
    if skipped:
        md += ["## Not drawn", ""] + [f"- `{n}`: {why}" for n, why in skipped] + [""]
    failed = sw.runs[sw.runs["status"] == "failed"]
    if len(failed):
        md += ["## Failed runs", ""]
        for _, r in failed.iterrows():
            vals = ", ".join(f"{short(k)}={r[k]}" for k in [*sw.config_keys, "seed"] if k in r)
            err = str(r.get("error") or "").splitlines()[0] if r.get("error") else "see error.txt"
            md.append(f"- `{r['run_id']}` ({vals}): {_md_escape(err)} (`{r['run_id']}/error.txt`)")
        md.append("")
    md += _corrupt_section(sw)
    path = out / "report.md"
    text = "\n".join(md)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def _corrupt_section(sw) -> list[str]:
    """report.md lines for runs whose summary.json is corrupt: how to retrain them (path shell-quoted)."""
    from sweep.collect import CORRUPT

    bad = sw.runs[sw.runs["status"] == CORRUPT]
    if not len(bad):
        return []
    md = ["## Corrupt runs", "", "Their summary.json could not be read; delete the run folder to retrain it "
          "(the same `sweep run` command then trains it again).", ""]
    for rid in bad["run_id"]:
        md.append(f"- `{rid}`: `rm -r {_md_escape(shlex.quote(str(sw.dir / rid)))}`")
    return md + [""]


def main(argv: Sequence[str] | None = None) -> None:
    from sweep.errors import fail

    p = argparse.ArgumentParser(prog="sweep report", description="Plots and a summary table (report.md) of a "
                                "sweep, in SWEEP/report/.")
    p.add_argument("sweep", help="the sweep folder (out_dir/<name>)")
    p.add_argument("-o", "--out", type=Path, help="write into this folder instead of SWEEP/report")
    a = p.parse_args(list(argv) if argv is not None else None)
    from sweep.collect import check_sweep_dir

    sweep_dir = check_sweep_dir(a.sweep, "sweep report")
    if not import_analysis():
        fail("the `analysis` package is not importable: run from the repository root (or add it to PYTHONPATH)")
    t0 = time.perf_counter()
    path = write_report(sweep_dir, a.out)
    print(f"sweep: report -> {path} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
