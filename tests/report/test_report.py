import re

import numpy as np

from workbench.core.result import Check, Result
from workbench.report import render_report, write_report

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _result():
    from analyzers.attribution.result import AttributionResult

    n = 1
    return AttributionResult(
        "attribution", model=XSS, data=XSS, config={"gradcam_layer": XSS},
        metrics={"completeness_gap": 0.001}, checks=[Check(XSS, True, 0.1, 0.5, XSS)],
        arrays={"input_display": np.zeros((n, 8, 8, 3), np.float32), "attr_saliency": np.ones((n, 8, 8)),
                "probs": np.full((n, 3), 1 / 3), "target": np.zeros(n, int)},
        info={"methods": ["saliency"], "ids": [XSS], "target_names": [XSS], "class_names_top5": [[XSS] * 3]})


def test_user_strings_are_escaped_and_nothing_is_fetched(tmp_path):
    html = render_report([_result()], title=XSS)
    scripts = re.findall(r"<script\b[^>]*>", html)
    # ours only: plotly.js, one JSON block per figure, the bootstrap script
    assert all(s in ("<script>", '<script type="application/json" id="data-0-0">') or 'type="application/json"' in s
               for s in scripts)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html  # shown as text, not run
    from workbench.report.html import _plotly_js

    ours = html.replace(_plotly_js(), "")  # plotly.js itself holds URL strings it never fetches
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", ours)
    assert "Content-Security-Policy" in html and "connect-src 'none'" in html
    assert html.count("<script>") == 2  # plotly.js inlined once + the bootstrap
    path = write_report([_result(), _result()], tmp_path / "r.html")
    assert path.stat().st_size > 3_000_000  # plotly.js is inside


def test_report_of_loaded_results_matches(tmp_path):
    r = _result()
    r.save(tmp_path / "a")
    back = Result.load(tmp_path / "a")
    assert len(back.figures()) == len(r.figures()) >= 2
