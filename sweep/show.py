"""`sweep show SWEEP RUN_ID`: one run as a person reads it: its config, summary, traceback and learning curve.

A run id may be given by its first characters (as git takes a commit's); `--json` prints the summary for programs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from sweep.results import check_sweep_dir, config_yaml

CURVE_WIDTH = 60


def _curve(values: list[float], width: int = CURVE_WIDTH) -> str:
    """A one-line sparkline of a loss curve (at most `width` points, lower is lower)."""
    bars = "▁▂▃▄▅▆▇█"
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    if not finite:
        return ""
    if len(values) > width:
        values = [values[i * len(values) // width] for i in range(width)]
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join(bars[int((v - lo) / span * (len(bars) - 1))] if v in finite else "?" for v in values)


def main(argv: Sequence[str] | None = None) -> None:
    from sweep.errors import fail
    from sweep.store import read_history_rows, scan

    p = argparse.ArgumentParser(prog="sweep show", description="Show one run: config, summary and curve.")
    p.add_argument("sweep", help="the sweep folder (out_dir/<name>)")
    p.add_argument("run_id", help="the run's id (or its first characters)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = p.parse_args(list(argv) if argv is not None else None)
    sweep_dir = check_sweep_dir(a.sweep, "sweep show")
    records = scan(sweep_dir)
    found = [rid for rid in records if rid.startswith(a.run_id)]
    if len(found) != 1:
        some = ", ".join(sorted(records)[:5]) + (", ..." if len(records) > 5 else "")
        why = "no run" if not found else f"{len(found)} runs"
        fail(f"{why} in {sweep_dir} with an id starting '{a.run_id}'; its runs: {some or 'none'}")
    rec = records[found[0]]
    summary = rec.summary or {}
    if a.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "traceback"}, indent=1, sort_keys=True))
        return
    print(f"run {rec.run_id} in {sweep_dir} ({rec.where})")
    print(f"status: {rec.status or 'pending'}" + (f" ({rec.problem})" if rec.problem else ""))
    print("\nconfig:")
    print("  " + config_yaml(rec.config or {}).rstrip().replace("\n", "\n  "))
    shown = ("final_val_loss", "final_val_acc", "final_test_loss", "final_test_acc", "best_val_loss",
             "best_val_epoch", "test_loss_at_best_val", "epochs_trained", "step", "total_steps", "diverged_step",
             "pruned_epoch", "wall_s", "wandb_id", "error")  # fmt: skip
    print("\nsummary:")
    for k in shown:
        if summary.get(k) is not None:
            print(f"  {k}: {summary[k]}")
    t = read_history_rows(rec)
    if t is not None and t.num_rows and "train_loss" in t.column_names:
        losses = [v for v in t.column("train_loss").to_pylist() if v is not None]
        if losses:
            print(f"\ntrain loss {losses[0]:.4g} -> {losses[-1]:.4g}: {_curve(losses)}")
    if summary.get("traceback"):
        print("\ntraceback:\n" + summary["traceback"].rstrip())


if __name__ == "__main__":
    main()
