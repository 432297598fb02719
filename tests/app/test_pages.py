"""AppTest opens every page with default widgets; the attribution page runs a job end to end."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import zoo_built

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")
PAGES = sorted(p.name for p in (Path(APP).parents[1] / "pages").glob("[a-z]*.py"))


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"../pages/{page}")
    at.run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_without_exception(page):
    at = _open(page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"


def test_home_shows_zoo_status():
    at = _open("home.py")
    assert any("Zoo models ready" in m.label for m in at.metric)


@pytest.mark.skipif(not zoo_built("digits_vgg.sk"), reason="zoo not built: run `make zoo`")
def test_attribution_page_runs_a_job_and_keeps_the_result_in_the_basket():
    at = _open("attribution.py")
    at.multiselect[0].set_value(["saliency", "grad_cam"]).run()
    next(b for b in at.button if b.label == "Run attribution").click().run()
    deadline = time.time() + 120
    while not at.get("plotly_chart") and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    charts = at.get("plotly_chart")
    assert charts, "no figure rendered"
    assert '"type":"heatmap"' in charts[0].proto.spec.replace(" ", "")
    assert not at.exception
    next(b for b in at.button if b.label == "Add to report").click().run()
    assert len(at.session_state["basket"]) == 1
    at.switch_page("../pages/report.py")
    at.run()
    assert not at.exception and any("1. attribution" in m.value for m in at.markdown)


def test_bad_config_shows_one_line_error_not_a_traceback():
    at = _open("attribution.py")
    at.multiselect[0].set_value(["grad_cam"]).run()
    at.text_input(key="attribution.gradcam_layer").set_value("no_such_layer").run()
    next(b for b in at.button if b.label == "Run attribution").click().run()
    deadline = time.time() + 60
    while not at.error and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    assert at.error and "bad_config" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.exception
