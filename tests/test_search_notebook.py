"""notebooks/search.ipynb runs top to bottom from a fresh checkout and draws its figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "search.ipynb"


def test_search_notebook_executes_and_plots(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    figures = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) == 3  # curves over samples, Pareto front, the chosen architecture
    for name in ("ppo", "evolution", "random"):
        assert f"{name:<10} best reward" in text
    assert "target T =" in text and "architectures on the front" in text and "res224_stem32" in text
