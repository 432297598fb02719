"""Real browser: Playwright drives Debian's chromium against `make run`'s server on a free port.

Opens the app, picks digits_vgg.sk, runs an attribution, sees a heat map, adds it to the report and
downloads the HTML. Screenshots of every page go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import zoo_built

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium missing: make browser"),
              pytest.mark.skipif(not zoo_built("digits_vgg.sk"), reason="zoo not built: run `make zoo`")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(["make", "-s", "run", f"PORT={port}"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"make run exited: {proc.stdout.read()[-2000:]}")
            time.sleep(0.5)
    else:
        pytest.fail("server did not start")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(20)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
        pg.set_default_timeout(60_000)
        pg.goto(server)
        pg.get_by_text("CNN interpretability workbench").first.wait_for()
        yield pg
        browser.close()


def _nav(page, label: str) -> None:
    """Click a sidebar link and wait until the new page has replaced the old one and settled."""
    before = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
    page.get_by_test_id("stSidebarNav").locator("a").filter(has_text=label).first.click()
    page.wait_for_function("old => { const h = document.querySelector('h1'); return h && h.innerText !== old; }",
                           arg=before, timeout=60_000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    page.wait_for_timeout(1500)


def test_attribution_flow_and_report_download(server, page, tmp_path):
    page.goto(server)
    page.get_by_text("CNN interpretability workbench").first.wait_for()
    page.get_by_text("Zoo models ready").wait_for()
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    page.screenshot(path=SHOTS / "home.png", full_page=True)

    links = page.get_by_test_id("stSidebarNav").locator("a").all_inner_texts()
    labels = [t.strip().splitlines()[-1].strip() for t in links if t.strip()]
    assert {"Home", "Model zoo", "Attribution", "Report"} <= set(labels)
    for label in [t for t in labels if t not in ("Home", "Attribution", "Report")]:
        _nav(page, label)
        page.wait_for_selector("h1")
        page.screenshot(path=SHOTS / f"{label.lower().replace(' ', '_')}.png", full_page=True)
        assert not page.get_by_test_id("stException").count(), f"exception on {label}"

    _nav(page, "Attribution")
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="digits_vgg.sk").click()
    page.get_by_role("button", name="Run attribution").click()
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=120_000)
    heat = page.locator('[data-testid="stPlotlyChart"] .heatmaplayer, [data-testid="stPlotlyChart"] image')
    assert heat.count() > 0, "no heat map drawn"
    page.wait_for_timeout(800)
    page.screenshot(path=SHOTS / "attribution.png", full_page=True)
    assert not page.get_by_test_id("stException").count()
    page.get_by_role("button", name="Add to report").click()
    page.wait_for_timeout(800)

    _nav(page, "Report")
    page.get_by_text("1. attribution").wait_for()
    page.screenshot(path=SHOTS / "report.png", full_page=True)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download HTML report").click()
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "Plotly.newPlot" in html and "digits_vgg.sk" in html and "ig_completeness" in html
    shutil.copy(path, SHOTS.parent / "report.html")


def test_long_run_can_be_cancelled_and_earlier_results_stay(server, page):
    _nav(page, "Attribution")
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="efficientnet_lite0.imagenet").click()
    page.get_by_text("Advanced settings").click()
    steps = page.get_by_role("spinbutton", name="n steps")
    steps.fill("1024")
    steps.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Run attribution").click()
    page.get_by_role("button", name="Cancel").wait_for(timeout=60_000)
    page.get_by_test_id("stProgress").first.wait_for()
    page.screenshot(path=SHOTS / "attribution_running.png", full_page=True)
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("The run was cancelled").wait_for(timeout=60_000)
    assert not page.get_by_test_id("stException").count()
    # the digits result from the first test is still on the page
    assert page.get_by_text("attribution · digits_vgg.sk").count() >= 1


def test_lab_question_answered_and_lab_report_downloaded(server, page, tmp_path):
    _nav(page, "Labs")
    page.screenshot(path=SHOTS / "labs.png", full_page=True)
    page.get_by_role("heading", name="What an attribution map claims").wait_for()
    for _ in range(3):  # to the step "A control that must fail"
        page.get_by_role("button", name="Next step").click()
        page.wait_for_timeout(1200)
    page.get_by_role("heading", name="A control that must fail").wait_for()
    page.get_by_role("button", name="Run control").click()
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=120_000)
    page.get_by_test_id("stRadio").filter(has_text="fail").get_by_text("fail", exact=True).click()
    page.wait_for_timeout(800)
    page.get_by_role("button", name="Check answer").click()
    page.get_by_text("Correct.").wait_for(timeout=60_000)
    page.screenshot(path=SHOTS / "labs_answered.png", full_page=True)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download lab report").click()
    path = tmp_path / "lab.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "Lab sheet: Attribution maps and their sanity checks" in html and "Score:</b> 1" in html
    assert "Plotly.newPlot" in html and "control" in html
