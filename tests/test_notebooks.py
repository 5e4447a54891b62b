"""The analysis notebooks run for real (nbclient, a fresh kernel) against the small sweep and save their PNGs; the
committed notebooks carry no outputs."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import nbformat
import pytest
from conftest import REPO

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep

NOTEBOOKS = {
    "compare_optimizers": ["lr_sensitivity", "learning_curves", "restarts"],
    "schedules_and_batch_size": ["schedules", "learning_curves", "batch_size"],
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_a_parameter_cell(name):
    nb = nbformat.read(REPO / "analysis" / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "SWEEP_DIR" in params[0].source and "SWEEP =" in params[0].source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_and_saves_pngs(name, small_sweep, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(REPO / "analysis" / f"{name}.ipynb", work)
    monkeypatch.setenv("SWEEP_DIR", str(small_sweep))
    monkeypatch.setenv("NOTEBOOK_OUT", str(work))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(work / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "not drawn" not in text, text
    for png in NOTEBOOKS[name]:
        path = work / f"{png}.png"
        assert path.exists(), png
        img = matplotlib.image.imread(path)
        assert img.shape[1] > 700 and img[..., :3].std() > 0.05 and path.stat().st_size > 20_000
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == len(NOTEBOOKS[name])
    # each plot cell returns its Figure, drawn inline as the cell's result (not a PNG read back from disk)
    results = [o for o in images if o["output_type"] == "execute_result"]
    assert len(results) == len(NOTEBOOKS[name]), [o["output_type"] for o in images]
    assert all("<Figure" in o["data"].get("text/plain", "") for o in results)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_documented_command_runs_the_notebook(name, small_sweep, tmp_path):
    """The shell command in the notebook's first cell works with the test extras (nbclient's `jupyter execute`;
    no nbconvert), relative to a copy of the notebook."""
    nb = nbformat.read(REPO / "analysis" / f"{name}.ipynb", as_version=4)
    line = next(ln.strip() for ln in nb.cells[0].source.splitlines() if ln.strip().startswith("SWEEP_DIR="))
    words = shlex.split(line.replace("$PWD", str(tmp_path)))
    env = {k: v for k, v in (w.split("=", 1) for w in words if "=" in w and not w.startswith("-")) if k.isupper()}
    argv = [w for w in words if w.split("=", 1)[0] not in env]
    assert argv[:2] == ["jupyter", "execute"] and argv[-1] == f"analysis/{name}.ipynb", line
    (tmp_path / "analysis").mkdir()
    shutil.copy(REPO / "analysis" / f"{name}.ipynb", tmp_path / "analysis")
    (tmp_path / "runs").mkdir()
    sweep_name = Path(env["SWEEP_DIR"]).name
    shutil.copytree(small_sweep, tmp_path / "runs" / sweep_name, symlinks=True)
    bindir = str(Path(sys.executable).parent)
    run_env = dict(
        os.environ, **env, MPLBACKEND="Agg", PATH=bindir + os.pathsep + os.environ.get("PATH", ""), PYTHONPATH=str(REPO)
    )
    p = subprocess.run(argv, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    for png in NOTEBOOKS[name]:
        assert (Path(env["NOTEBOOK_OUT"]) / f"{png}.png").exists(), png
