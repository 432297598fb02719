"""Render results into one self-contained HTML file.

Jinja2 with autoescape on escapes every user string; figure JSON is embedded in
``application/json`` script blocks with ``<``, ``>`` and ``&`` written as unicode escapes,
so no label can close the block. plotly.js is inlined once; a CSP meta tag forbids
any network fetch.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jinja2
import plotly.graph_objects as go

from workbench.core.result import Result

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("workbench.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    import plotly.offline

    return plotly.offline.get_plotlyjs()


def _safe_json(fig) -> str:
    if hasattr(fig, "update_layout") and not fig.layout.template.to_plotly_json():
        fig = go.Figure(fig).update_layout(template="plotly_white")  # the app's theme is not in the JSON
    text = fig.to_json() if hasattr(fig, "to_json") else json.dumps(fig)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)[:2000]
    return str(v)


def _view(r: Result, index: int) -> dict:
    figs = [{"id": f"{index}-{k}", "json": _safe_json(f)} for k, f in enumerate(r.figures())]
    prov = r.to_json()["provenance"]
    return {"title": r.title, "summary": r.summary(), "passed": r.passed,
            "checks": [{**c.to_dict(), "value": _fmt(c.value), "threshold": _fmt(c.threshold)}
                       for c in r.checks],
            "metrics": [(k, _fmt(v)) for k, v in sorted(r.metrics.items())],
            "config": [(k, _fmt(v)) for k, v in r.config.items()],
            "provenance": [(k, _fmt(v)) for k, v in prov.items()], "figures": figs}


def render_report(results: list[Result], title: str = "CNN workbench report", lab: dict | None = None) -> str:
    """HTML text of one report holding every result in order.

    ``lab`` (optional) adds a graded lab sheet first: {"title", "student", "score", "total",
    "questions": [{"question", "prompt", "given", "prediction", "reference", "correct", "points", "of"}]}.
    """
    try:
        ver = version("cnn-workbench")
    except PackageNotFoundError:
        ver = "dev"
    views = [_view(r, i) for i, r in enumerate(results)]
    checks = [c for r in results for c in r.checks]
    return _ENV.get_template("report.html.j2").render(
        title=title, results=views, plotly_js=_plotly_js(), version=ver,
        created=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        n_checks=len(checks), n_passed=sum(c.passed for c in checks),
        lab={**lab, "questions": [{k: _fmt(v) if k in ("given", "reference", "prediction") else v
                                   for k, v in q.items()} for q in lab["questions"]]} if lab else None)


def write_report(results: list[Result], path: str | Path, title: str = "CNN workbench report",
                 lab: dict | None = None) -> Path:
    """Render and write atomically (a temporary sibling, then a rename): a symbolic link or a folder at
    ``path`` is refused with one line (OutputError), an existing report is replaced only when whole."""
    from workbench.core.result_folder import check_file_destination, write_file_atomic

    check_file_destination(path)  # before rendering: a bad -o fails at once
    return write_file_atomic(path, render_report(results, title, lab).encode("utf-8"))
