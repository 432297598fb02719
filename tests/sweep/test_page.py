"""The app's Sweeps page runs a small sweep as a job and shows the aggregated figures and the basket button."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")


def test_sweeps_page_runs_a_sweep_and_shows_the_aggregate(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))  # the page's cell cache goes under the workbench home
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/sweeps.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="sweeps.lrp_pruning.criteria").set_value(["weight", "random"])
    at.text_input(key="sweeps.lrp_pruning.rates").set_value("20,40")
    at.text_input(key="sweeps.seeds").set_value("0")
    at.number_input(key="sweeps.workers").set_value(1)
    at.run()
    next(b for b in at.button if b.label == "Start sweep").click()
    at.run()
    deadline = time.time() + 240
    while "result.sweeps" not in at.session_state and time.time() < deadline:
        assert "error.sweeps" not in at.session_state, at.session_state["error.sweeps"]
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    result = at.session_state["result.sweeps"]
    assert result.metrics["cells_done"] == 4 and result.passed
    charts = at.get("plotly_chart")
    assert len(charts) >= 2  # curves with spread and the criteria x rates heat map
    assert any(b.label == "Add to report" for b in at.button)
    assert len(list((tmp_path / "sweep-cells").iterdir())) == 4
