"""`sweep run`: the Hydra application. One config -> one run; `-m` hands the grid to sweep's launcher.

The entry point: sweep.cli calls `main`, and nothing else imports this module (what it shares lives in
sweep.compose and sweep.errors)."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sweep.compose import objective_value, single_run  # importing it registers the schema and plugin configs
from sweep.errors import exit_on_user_error, train_guarded


def register_plugins() -> None:
    """Register sweep's launcher and sweeper classes with Hydra: an editable install hides hydra_plugins/ from
    Hydra's scan. After the scan, which re-executes Hydra's core plugin modules (redefining BasicSweeper)."""
    from hydra.core.plugins import Plugins

    Plugins.instance()
    from hydra_plugins.sweep_launcher.sweep_launcher import SweepLauncher, SweepSweeper

    for plugin in (SweepLauncher, SweepSweeper):
        Plugins.instance().register(plugin)


register_plugins()

__all__ = ["main", "run"]


@hydra.main(version_base="1.3", config_path="pkg://sweep.conf", config_name="config")
def run(cfg: DictConfig) -> float | None:
    """Train the one run `cfg` describes (resuming it when a checkpoint exists); returns its `objective` (as
    sweep's launcher does: a validation metric, never a test one), which a Hydra sweeper run with another
    launcher (`hydra/launcher=basic`) optimizes."""
    from sweep.runner import train_runs, with_stored_summary  # after the validation-only paths have returned

    with exit_on_user_error():  # here, not through Hydra's job-failure log ("Error executing job ...")
        c = single_run(cfg)
    summary = train_guarded(lambda: train_runs([c], pack=1)[0])
    status = summary.get("status")
    where = f"sweep show {shlex.quote(str(Path(c['out_dir']) / c['name']))} {summary.get('run_id')}"
    if status == "claimed":
        print(
            f"sweep: run {summary['run_id']} is being trained by {summary.get('claimed_by')}: {where}; "
            "nothing to do here (`sweep status` follows it)"
        )
    elif summary.get("skipped"):
        print(f"sweep: run {summary['run_id']} is already {status}: {where} (a new name=... trains it again)")
    else:
        loss, acc = summary.get("final_test_loss"), summary.get("final_test_acc")
        extra = f", test loss {loss:.4g}" if loss is not None else ""
        extra += f", test acc {acc:.3f}" if acc is not None else ""
        print(f"sweep: run {summary.get('run_id')} {status}{extra} -> {where}")
    if status == "failed":
        raise SystemExit(1)
    return objective_value(c, with_stored_summary(c, summary))


def main() -> None:
    """Run the app on sys.argv (Hydra reads it); a user error, wherever Hydra or sweep raises it, is one line
    and exit status 2; anything else keeps its traceback."""
    with _hydra_raises(), exit_on_user_error():
        run()


@contextlib.contextmanager
def _hydra_raises() -> Iterator[None]:
    """Inside: Hydra raises its errors instead of printing them. HYDRA_FULL_ERROR is Hydra's documented switch
    for that; without it Hydra prints a user error over several lines and exits 1, and the one line (with the
    fix Hydra's message offers) would have to come from patching Hydra's private run_and_report."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before
