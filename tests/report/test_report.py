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


def _heavy():
    """A result whose figures are heavy: a 600x600 float64 map and a 20,000-point line with one spike."""
    import plotly.graph_objects as go

    class Heavy(Result):
        def figures(self):
            z = np.add.outer(np.arange(600.0), np.arange(600.0))
            y = np.sin(np.arange(20000) / 50.0)
            y[12345] = 9.0
            return [go.Figure(go.Heatmap(z=z, name="map")),
                    go.Figure(go.Scatter(y=y, mode="lines", name="trace")),
                    go.Figure(go.Scatter(x=np.arange(5000.0), y=np.arange(5000.0), mode="markers"))]

    return Heavy("heavy", model="m", data="/tmp/u/3fa2b1.edf", config={}, metrics={}, checks=[], arrays={})


def _figures(html: str) -> list[dict]:
    import json

    blocks = re.findall(r'<script type="application/json" id="data-[^"]+">(.*?)</script>', html, re.S)
    return [json.loads(b) for b in blocks]


def test_heavy_figures_are_made_lighter_for_display_and_templates_stored_once():
    import base64

    r = _heavy()
    html = render_report([r, r], names={"/tmp/u/3fa2b1.edf": "night.edf"})
    figs = _figures(html)
    z = figs[0]["data"][0]["z"]
    assert z["dtype"] == "f4" and tuple(z["shape"].split(", ") if isinstance(z["shape"], str) else z["shape"]) \
        in (("200", "200"), (200, 200))  # 600 a side -> mean of 3x3 blocks, float32
    first = np.frombuffer(base64.b64decode(z["bdata"]), np.float32)[0]
    assert first == np.add.outer(np.arange(3.0), np.arange(3.0)).mean()
    line = figs[1]["data"][0]
    y = np.frombuffer(base64.b64decode(line["y"]["bdata"]), np.float32)
    assert 1000 < len(y) <= 4000 and y.max() == 9.0  # thinned, the spike kept
    cloud = figs[2]["data"][0]
    assert len(np.frombuffer(base64.b64decode(cloud["x"]["bdata"]), np.float32)) == 5000  # markers: every point
    assert html.count("Lighter for display:") == 4  # two notes per copy of the result
    eeg = np.ones((30, 384))
    import plotly.graph_objects as go

    from workbench.report.compact import compact

    small, notes = compact(go.Figure([go.Heatmap(z=eeg), go.Heatmap(z=eeg)]))
    assert small.data[0].z.shape == (30, 192)  # channel rows kept, time columns averaged in pairs
    assert notes == ["2 x heat map: 30x384 shown as 30x192 (mean of 1x2 blocks)"]
    key = figs[0]["wb_template"]
    assert html.count(f'"{key}": {{') == 1 and all(f["wb_template"] == key for f in figs)
    assert "template" not in figs[0]["layout"]
    assert "night.edf" in html.split("<h2>1.")[1].split("</h2>")[0]  # an upload titled by its file name
    from workbench.report import figure_bytes

    assert figure_bytes(r) < sum(len(f.to_json()) for f in r.figures()) / 3


def test_titles_without_a_data_id_end_without_a_dangling_separator():
    from analyzers.lrp_pruning.result import LRPPruningResult

    r = LRPPruningResult("lrp_pruning", model="digits_vgg.sk", data="", config={}, metrics={}, checks=[],
                         arrays={}, info={"criteria": ["lrp", "weight"]})
    assert r.title == "lrp_pruning · digits_vgg.sk · lrp, weight"
    bare = Result("kernel_spectra", model="m", data="", config={}, metrics={}, checks=[], arrays={})
    assert bare.title == "kernel_spectra · m"  # the base title leaves the missing part out
    html = render_report([r, bare])
    heads = [h.split("\n")[0].strip() for h in html.split("<h2>")[1:] if h[:1].isdigit()]
    assert heads == ["1. lrp_pruning · digits_vgg.sk · lrp, weight", "2. kernel_spectra · m"], heads
