"""Plan item 8: 30 payloads x every user-controlled field exported to reports: no script nodes but
ours, no event attributes, no javascript: URLs; a real browser sees no dialog and no request."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from workbench.core.result import Check
from workbench.report import render_report
from workbench.report.html import _plotly_js

PAYLOADS = [
    "<script>alert(1)</script>", "</script><script>alert(2)</script>", "<img src=x onerror=alert(3)>",
    "<svg onload=alert(4)>", "<body onload=alert(5)>", "<a href=\"javascript:alert(6)\">x</a>",
    "javascript:alert(7)", "<a href='data:text/html,<script>alert(8)</script>'>y</a>",
    "<iframe src=javascript:alert(9)>", "\"><script>alert(10)</script>", "'><img src=x onerror=alert(11)>",
    "<style>@import url(http://evil/x.css)</style>", "<div style=\"background:url(javascript:alert(13))\">",
    "{{ 7*7 }}{% print(1) %}", "\u2028<script>alert(15)</script>\u2029",
    "<math><mi xlink:href=\"javascript:alert(16)\">",
    "$\\href{javascript:alert(17)}{x}$", "<details open ontoggle=alert(18)>", "<input autofocus onfocus=alert(19)>",
    "<object data=javascript:alert(20)>", "<embed src=javascript:alert(21)>", "<link rel=import href=//evil>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(23)'>", "<base href=//evil/>",
    "<form action=javascript:alert(25)><button>z</button></form>", "<video><source onerror=alert(26)>",
    "<!--<script>alert(27)</script>-->", "<![CDATA[<script>alert(28)</script>]]>", "&lt;script&gt;alert(29)",
    "<sCrIpT sRc=//evil/x.js></ScRiPt>",
]
FIELDS = ("model", "data_id", "class_name", "layer_name", "report_title")


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts, self.events, self.js_urls, self.srcs = [], [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs))
        for k, v in attrs:
            if k.startswith("on"):
                self.events.append((tag, k))
            if v and "javascript:" in v.lower().replace(" ", ""):
                self.js_urls.append((tag, k, v))
            if k in ("src", "href", "action", "data") and v and not v.startswith("#"):
                self.srcs.append(v)


def _result(payload: str, field: str):
    from analyzers.attribution.result import AttributionResult

    def pick(f):
        return payload if field in (f, "all") else f"ok_{f}"

    return AttributionResult(
        "attribution", model=pick("model"), data=pick("data_id"), config={"gradcam_layer": pick("layer_name")},
        metrics={"completeness_gap": 0.001}, checks=[Check("c", True, 0.1, 0.5, pick("layer_name"))],
        arrays={"input_display": np.zeros((1, 4, 4, 3), np.float32), "attr_grad_cam": np.ones((1, 4, 4)),
                "rand_grad_cam": np.ones((1, 4, 4)), "probs": np.full((1, 3), 1 / 3), "target": np.zeros(1, int)},
        info={"methods": ["grad_cam"], "ids": [pick("data_id")], "target_names": [pick("class_name")],
              "class_names_top5": [[pick("class_name")] * 3], "gradcam_layer": pick("layer_name")}), \
        pick("report_title")


def _scan(html: str) -> _Scan:
    s = _Scan()
    s.feed(html.replace(_plotly_js(), ""))  # plotly.js itself is ours; scan everything else
    return s


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_every_field_stays_text(payload):
    """One report per payload with the payload in all five fields at once (30 reports cover 30 x 5)."""
    result, title = _result(payload, "all")
    s = _scan(render_report([result], title))
    ours = [a for a in s.scripts if a in ({}, {"type": "application/json", "id": a.get("id", "")})]
    assert len(ours) == len(s.scripts) == 2 + len(result.figures()), s.scripts
    assert not s.events and not s.js_urls and not s.srcs, (s.events, s.js_urls, s.srcs)


def test_each_field_reaches_the_report():
    """The scan above is meaningful only if every field's text is really exported (escaped)."""
    for field in FIELDS:
        result, title = _result("MARK<x>", field)
        assert "MARK&lt;x&gt;" in render_report([result], title) or "MARK\\u003cx\\u003e" in \
            render_report([result], title), field


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.e2e
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium missing: make browser")
def test_browser_sees_no_dialog_and_no_request(tmp_path):
    from playwright.sync_api import sync_playwright

    pages = []
    for i, payload in enumerate(PAYLOADS[:10]):
        result, title = _result(payload, "all")
        p = tmp_path / f"r{i}.html"
        p.write_text(render_report([result], title))
        pages.append(p)
    dialogs, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                     "--disable-background-networking", "--no-first-run"])
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file:") else None)
        for p in pages:
            page.goto(p.as_uri())
            page.wait_for_selector(".main-svg", timeout=20_000)
            page.mouse.move(200, 300)
            page.wait_for_timeout(200)
        browser.close()
    assert dialogs == [] and requests == []
