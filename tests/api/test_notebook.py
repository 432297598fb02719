"""examples/your_own_model.ipynb runs headless (nbclient): no cell fails, every result cell shows its
Plotly figures, plotly.js is inlined exactly once, and the report and weights are written."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "your_own_model.ipynb"
RESULT_CELLS = ("r_attr", "r_lrp", "r_rf", "r_ls", "r_ks")


@pytest.mark.slow
def test_notebook_runs_and_shows_every_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    elapsed = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    shown = {}
    for cell in nb.cells:
        last = cell.source.strip().splitlines()[-1] if cell.cell_type == "code" and cell.source.strip() else ""
        if last in RESULT_CELLS:
            html = [o["data"]["text/html"] for o in cell.outputs if o.output_type == "execute_result"]
            assert html, f"{last} shows no HTML"
            shown[last] = html[0]
    assert set(shown) == set(RESULT_CELLS)
    for name, html in shown.items():
        assert html.count("Plotly.newPlot") >= 1, f"{name} has no figure"
        assert "checks" in html or "check" in html
    assert sum("Copyright (c)" in h for h in shown.values()) == 1  # plotly.js inlined once
    report = tmp_path / "your_own_model_report.html"
    assert report.stat().st_size > 1_000_000 and (tmp_path / "small_cnn.safetensors").exists()
    print(f"notebook ran in {elapsed:.1f} s")
