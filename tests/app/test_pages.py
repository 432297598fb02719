"""AppTest opens every page, hand-written and generated, with default widgets; the generated attribution
page and the example plug-in's generated page run jobs end to end."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from workbench.core.analyzer import list_analyzers

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")
PAGES_DIR = Path(APP).parents[1] / "pages"
#: hand-written pages (the generic page is opened once per analyzer below)
PAGES = sorted(p.name for p in PAGES_DIR.glob("[a-z]*.py") if p.name != "analyzer.py")
GENERATED = sorted(a.name for a in list_analyzers() if not a.page)


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"../pages/{page}")
    at.run()
    return at


def _open_analyzer(name: str) -> AppTest:
    """The generic page as registered for one analyzer. AppTest.switch_page matches a file path, and
    pages/analyzer.py is registered once per analyzer, so the page is chosen by its URL path's hash,
    which is how Streamlit itself identifies a page (st.Page hashes url_path)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at._page_hash = calc_hash(name)
    at.run()
    return at


def _wait(at: AppTest, done, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not done() and time.time() < deadline:
        time.sleep(0.5)
        at.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_hand_written_page_opens_without_exception(page):
    at = _open(page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"


@pytest.mark.parametrize("name", GENERATED)
def test_every_generated_page_opens_without_exception(name):
    at = _open_analyzer(name)
    assert not at.exception, [e.value for e in at.exception]
    analyzer = next(a for a in list_analyzers() if a.name == name)
    assert [t.value for t in at.title] == [analyzer.title]
    assert any(b.label == f"Run {name.replace('_', ' ')}" for b in at.button)


def test_navigation_has_a_page_for_every_registered_analyzer():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    registered = {info.get("url_pathname"): str(info.get("script_path", "")) for info in at._registered_pages.values()}
    for an in list_analyzers():
        if an.page:  # the override page is registered under its file's name
            assert Path(an.page).stem in registered and registered[Path(an.page).stem].endswith(an.page), an.name
        else:
            assert registered.get(an.name, "").endswith("pages/analyzer.py"), an.name
    assert "channel_stats" in registered, "the example plug-in has no page: pip install -e examples/wb_example_plugin"


def test_home_shows_zoo_status():
    at = _open("home.py")
    assert any("Zoo models ready" in m.label for m in at.metric)


def test_generated_attribution_page_runs_a_job_and_keeps_the_result_in_the_basket():
    at = _open_analyzer("attribution")
    at.selectbox(key="attribution.model").set_value("digits_vgg.sk").run()
    assert at.multiselect(key="attribution.method").label == "Methods"
    at.multiselect(key="attribution.method").set_value(["saliency", "grad_cam"]).run()
    at.selectbox(key="attribution.target").set_value(3).run()  # the class picker from the Config's target field
    next(b for b in at.button if b.label == "Run attribution").click().run()
    _wait(at, lambda: at.get("plotly_chart"))
    charts = at.get("plotly_chart")
    assert charts, "no figure rendered"
    assert '"type":"heatmap"' in charts[0].proto.spec.replace(" ", "")
    assert not at.exception
    result = at.session_state["result.attribution"]
    assert result.config["target"] == 3 and result.config["method"] == "saliency,grad_cam"
    next(b for b in at.button if b.label == "Add to report").click().run()
    assert len(at.session_state["basket"]) == 1
    at.switch_page("../pages/report.py")
    at.run()
    assert not at.exception and any("1. attribution" in m.value for m in at.markdown)


def test_empty_multi_choice_disables_the_run_button():
    at = _open_analyzer("attribution")
    at.multiselect(key="attribution.method").set_value([]).run()
    assert next(b for b in at.button if b.label == "Run attribution").disabled


def test_bad_config_shows_one_line_error_not_a_traceback():
    at = _open_analyzer("attribution")
    at.multiselect(key="attribution.method").set_value(["grad_cam"]).run()
    at.text_input(key="attribution.gradcam_layer").set_value("no_such_layer").run()
    next(b for b in at.button if b.label == "Run attribution").click().run()
    _wait(at, lambda: at.error, 60)
    # one line in the user's words: the cause names the layer; no error code, no command-line flag
    line = at.error[0].value
    assert "no_such_layer" in line and "bad_config" not in line and "--" not in line and "\n" not in line, line
    assert not at.exception


def test_plugin_page_runs_the_plugin_with_its_config_widgets():
    at = _open_analyzer("channel_stats")
    at.selectbox(key="channel_stats.model").set_value("digits_vgg.sk").run()
    at.selectbox(key="channel_stats.sample.digits_vgg.sk").set_value("digits:test").run()
    at.number_input(key="channel_stats.max_shift").set_value(0.3).run()  # a float field from Config metadata
    next(b for b in at.button if b.label == "Run channel stats").click().run()
    _wait(at, lambda: at.get("plotly_chart"))
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 2
    result = at.session_state["result.channel_stats"]
    assert result.config["max_shift"] == 0.3
    assert {c.name: c.passed for c in result.checks} == {"bn_stats_match": True, "control_breaks_match": True,
                                                          "finite_values": True}
