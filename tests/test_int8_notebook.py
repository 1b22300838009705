"""notebooks/int8_vs_float.ipynb runs top to bottom on the shipped data and times its live layers on the host."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from latprof.space import LayerConfig

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "int8_vs_float.ipynb"
SPEEDUP_CSV = NOTEBOOKS / "data" / "host_int8_speedup.csv"
NUMBER = r"-?\d+(?:\.\d+)?"
GAP = r"[ \t]+"  # within one printed line


def _printed(nb, tag: str) -> str:
    cells = [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r}"
    return "".join(o.get("text", "") for o in cells[0].outputs if o.output_type == "stream")


def _has_row(text: str, *labels: str) -> bool:
    """A printed table line that starts with these index labels followed by a number."""
    pattern = r"^" + GAP.join(map(re.escape, labels)) + rf"{GAP}{NUMBER}(?:{GAP}|$)"
    return re.search(pattern, text, re.MULTILINE) is not None


def test_notebook_runs_on_the_shipped_data(monkeypatch):
    monkeypatch.delenv("LATPROF_NOTEBOOK_DB", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 2  # bars per layer kind / operator family, speed-up against MACs

    shipped = pd.read_csv(SPEEDUP_CSV)
    layers, operators = shipped[shipped.unit == "layer"], shipped[shipped.unit == "operator"]
    layer_table = _printed(nb, "layer-table")
    missing = [kind for kind in sorted(set(layers.kind)) if not _has_row(layer_table, kind)]
    assert not missing, f"layer kinds without a row: {missing}\n{layer_table}"
    operator_table = _printed(nb, "operator-table")
    missing = [pair for pair in sorted(set(zip(operators.family, operators.kind)))
               if not _has_row(operator_table, *pair)]
    missing += [family for family in sorted(set(operators.family)) if not _has_row(operator_table, family)]
    assert not missing, f"operator kinds/families without a row: {missing}\n{operator_table}"

    live = _printed(nb, "live")
    count = int(re.search(r"timed (\d+) layers live", live).group(1))
    numbers = [rf"({NUMBER})"] * 3 + [NUMBER] * 2
    rows = re.findall(rf"^(\S+){GAP}(.+?){GAP}" + GAP.join(numbers) + "$", live, re.MULTILINE)
    assert count >= 2 and len(rows) == count, live
    for key, kind, float_ms, int8_ms, speedup in rows:
        LayerConfig.from_key(key)  # a real layer key
        assert float(float_ms) > 0 and float(int8_ms) > 0 and float(speedup) > 0, live
