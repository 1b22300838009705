"""notebooks/lut_and_predictor.ipynb runs top to bottom on the example data shipped with the repository."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "lut_and_predictor.ipynb"


def test_notebook_runs_on_the_shipped_data(monkeypatch):
    monkeypatch.delenv("LATPROF_NOTEBOOK_DB", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 4  # three heatmaps in one figure, raw vs rescaled, scatter, histogram
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "2837 table entries" in text and "noise floor" in text
