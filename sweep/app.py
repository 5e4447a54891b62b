"""`sweep run`: the Hydra application. One config -> one run; `-m` hands the grid to sweep's launcher."""
from __future__ import annotations

import hydra
import hydra._internal.utils as hydra_utils
from omegaconf import DictConfig, OmegaConf, open_dict

from sweep.config import register_configs, validate
from sweep.errors import report_user_errors

from hydra.core.plugins import Plugins

Plugins.instance()  # scan first: the scan re-executes Hydra's core plugin modules, redefining BasicSweeper
from hydra_plugins.sweep_launcher.sweep_launcher import SweepLauncher, SweepSweeper  # noqa: E402

register_configs()
for _plugin in (SweepLauncher, SweepSweeper):
    Plugins.instance().register(_plugin)  # an editable install hides hydra_plugins/ from Hydra's scan
# Hydra prints user errors over several lines with a hint about HYDRA_FULL_ERROR; sweep promises one line.
hydra_utils.run_and_report = report_user_errors

SINGLE_RUN_NAME = "single"


def resolved(cfg: DictConfig | dict, name: str | None = None) -> dict:
    """The validated, fully resolved config as a plain dict (what the engine and results store receive)."""
    if isinstance(cfg, DictConfig):
        if "hydra" in cfg:
            cfg = cfg.copy()
            with open_dict(cfg):
                cfg.pop("hydra")  # Hydra's own node (in -m it is only half-filled); not part of a run
        cfg = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    validate(cfg)
    c = dict(cfg)
    c["name"] = c.get("name") or name or SINGLE_RUN_NAME
    return c


@hydra.main(version_base="1.3", config_path="pkg://sweep.conf", config_name="config")
def run(cfg: DictConfig) -> float | None:
    """Train the one run `cfg` describes (resuming it when a checkpoint exists); returns its final test loss."""
    from sweep.engine import check_data
    from sweep.errors import fail, one_line
    from sweep.runner import train_runs  # after validation-only paths (--cfg, --help) have returned

    try:
        c = resolved(cfg)
        check_data([c])
    except Exception as e:  # a user error exits here, not through Hydra's job-failure logging
        msg = one_line(e)
        if msg is None:
            raise
        fail(msg)
    summary = train_runs([c], pack=1)[0]
    status = summary.get("status")
    where = f"{c['out_dir']}/{c['name']}/{summary.get('run_id')}"
    if summary.get("skipped"):
        print(f"sweep: run {summary['run_id']} is already {status}: {where} (delete it to train again)")
    else:
        loss, acc = summary.get("final_test_loss"), summary.get("final_test_acc")
        extra = f", test loss {loss:.4g}" if loss is not None else ""
        extra += f", test acc {acc:.3f}" if acc is not None else ""
        print(f"sweep: run {summary.get('run_id')} {status}{extra} -> {where}")
    if status == "failed":
        raise SystemExit(1)
    return summary.get("final_test_loss")
