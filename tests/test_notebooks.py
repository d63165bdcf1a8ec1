"""The review notebooks run top to bottom on the demo's outputs, and are stored without outputs.

Each notebook is executed by nbclient in a kernel of this interpreter (the
``python3`` kernelspec; jupyter_client launches it with ``sys.executable``), in
``notebooks/`` as its working folder, with the demo's output folder passed in
``BERTHWATCH_OUT_DIR``. The validation notebook runs in its quick mode (two small
ports, one SAR scene) and says so and stops when ../shared/datasets is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency (pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is a dev dependency (pip install -e '.[dev]')")
pytest.importorskip("ipykernel", reason="ipykernel is a dev dependency (pip install -e '.[dev]')")

from conftest import DATASETS, PROJECT_ROOT  # noqa: E402

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120


def _execute(path: Path, env: dict, monkeypatch) -> "nbformat.NotebookNode":
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.execute()
    return nb


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


def _text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(o.get("text", "") + o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_review_detections.ipynb", "02_activity_vs_claim.ipynb",
                                            "03_detector_validation.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs; run `python notebooks/strip_outputs.py`"


def test_strip_outputs_cleans_an_executed_notebook(tmp_path):
    sys.path.insert(0, str(NOTEBOOKS_DIR))
    try:
        from strip_outputs import main
    finally:
        sys.path.remove(str(NOTEBOOKS_DIR))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].execution_count = 3
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert main([str(path)]) == 0
    cell = nbformat.read(path, as_version=4).cells[0]
    assert cell.outputs == [] and cell.execution_count is None and cell.source == "1 + 1"


def test_review_detections_notebook(demo_out, monkeypatch):
    nb = _execute(NOTEBOOKS_DIR / "01_review_detections.ipynb", {"BERTHWATCH_OUT_DIR": str(demo_out)}, monkeypatch)
    assert len(_outputs(nb, "image/png")) == 4  # the date's panels, stack radiometry, the S2 and S1 dates
    assert len(_outputs(nb, "text/html")) >= 2  # vessel and stack tables
    assert "reviewing rajin on 2023-" in _text(nb)


def test_activity_vs_claim_notebook(demo_out, monkeypatch):
    nb = _execute(NOTEBOOKS_DIR / "02_activity_vs_claim.ipynb", {"BERTHWATCH_OUT_DIR": str(demo_out)}, monkeypatch)
    assert len(_outputs(nb, "image/png")) >= 2  # time series, voyages
    text = _text(nb)
    assert "claim us-nsc-2023-10-13" in text and "simulated input: True" in text


def test_detector_validation_notebook(tmp_path, monkeypatch):
    env = {"BERTHWATCH_DATASETS_DIR": str(DATASETS), "BERTHWATCH_VALIDATE_DIR": str(tmp_path / "validate"),
           "BERTHWATCH_QUICK": "1"}
    nb = _execute(NOTEBOOKS_DIR / "03_detector_validation.ipynb", env, monkeypatch)
    if not DATASETS.is_dir():
        assert "No validation datasets" in _text(nb)
        pytest.skip(f"validation datasets not found at {DATASETS}; the notebook said so and stopped")
    assert (tmp_path / "validate" / "sen2ships" / "metrics.json").exists()
    assert len(_outputs(nb, "text/html")) >= 2  # one metrics table per dataset
    assert len(_outputs(nb, "image/png")) >= 1


def test_detector_validation_notebook_without_datasets(tmp_path, monkeypatch):
    env = {"BERTHWATCH_DATASETS_DIR": str(tmp_path / "absent"), "BERTHWATCH_VALIDATE_DIR": str(tmp_path / "v"),
           "BERTHWATCH_QUICK": "1"}
    nb = _execute(NOTEBOOKS_DIR / "03_detector_validation.ipynb", env, monkeypatch)
    assert "No validation datasets" in _text(nb)
    assert not _outputs(nb, "image/png")
