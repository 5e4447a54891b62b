"""The analysis notebooks run for real (nbclient, a fresh kernel) against the small sweep and save their PNGs; the
committed notebooks carry no outputs."""
from __future__ import annotations

import shutil

import matplotlib.image
import nbformat
import pytest

from conftest import REPO

pytest_plugins = ["analysis_fixtures"]   # the shared session sweeps: small_sweep, init_sweep

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
