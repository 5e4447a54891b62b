"""An installed wheel (not only an editable checkout) carries conf/, analysis/ (as sweep.analysis) and the launcher
plugin, builds without packaging warnings, and no top-level package of a generic name."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import REPO

from sweep import store


def test_wheel_composes_configs_and_runs_multirun(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    log = build.stdout + build.stderr
    assert "Warning" not in log, log  # e.g. setuptools' "Package 'sweep.conf.x' is absent from `packages`"
    (wheel,) = (tmp_path / "dist").glob("optim_sweep-*.whl")  # PyPI's `sweep` is another project
    names = zipfile.ZipFile(wheel).namelist()
    assert "sweep/conf/config.yaml" in names and "sweep/conf/optimizer/adam.yaml" in names
    assert "sweep/analysis/__init__.py" in names and "sweep/analysis/compare_optimizers.ipynb" in names
    assert "hydra_plugins/sweep_launcher/sweep_launcher.py" in names
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"sweep", "hydra_plugins"}, tops
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = dict(os.environ, PYTHONPATH=str(site))  # wins over the editable install's meta-path finder
    where = subprocess.run(
        [sys.executable, "-c", "import sweep, sweep.conf; print(sweep.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(site))
    cfg = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "run", "--cfg", "job", "optimizer=rmsprop", "schedule=warmup_cosine"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert cfg.returncode == 0, cfg.stderr
    assert "name: rmsprop" in cfg.stdout and "name: warmup_cosine" in cfg.stdout
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "run",
            "-m",
            "lr=0.1,0.2",
            "epochs=1",
            "model.hidden=[8]",
            "wandb.mode=disabled",
            f"out_dir={tmp_path / 'runs'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    (sweep_dir,) = [d for d in (tmp_path / "runs").iterdir() if d.is_dir() and not d.name.startswith(".")]
    records = store.scan(sweep_dir)
    assert len(records) == 2 and {r.status for r in records.values()} == {"done"}
    # A user's own analysis.py where they run sweep does not shadow the report's plots.
    (tmp_path / "analysis.py").write_text("raise ImportError('the user analysis.py')\n")
    report = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "report", str(sweep_dir)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert report.returncode == 0, report.stderr
    assert (sweep_dir / "report" / "report.md").is_file()
