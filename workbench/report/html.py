"""Render results into one self-contained HTML file.

Jinja2 with autoescape on escapes every user string; figure JSON is embedded in
``application/json`` script blocks with ``<``, ``>`` and ``&`` written as unicode escapes,
so no label can close the block. plotly.js is inlined once; a CSP meta tag forbids
any network fetch.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jinja2

from workbench.core.plots import tidy
from workbench.core.result import Result
from workbench.report.compact import compact

#: the plot area of a figure in the report (its body is at most 1200 px wide; plotly's margins take ~150)
REPORT_PLOT_PX = 1000
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("workbench.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    import plotly.offline

    return plotly.offline.get_plotlyjs()


@functools.lru_cache(maxsize=1)
def _white_template() -> dict:
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def _escape(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _figure(fig, templates: dict[str, dict]) -> tuple[str, list[str]]:
    """(escaped figure JSON, notes on what was made lighter for display). The figure's template (~7 kB, the
    same for nearly every figure) is stored once in ``templates`` and named by the figure (``wb_template``)."""
    if not hasattr(fig, "to_json"):
        return _escape(json.dumps(fig)), []
    # the template travels as JSON beside the figure: copying a figure that holds one re-validates all ~7 kB of it
    # (0.18 s of CPU on a report's first figure, issue 21), so it is taken off before compact() copies the figure
    template = fig.layout.template.to_plotly_json() or _white_template()  # the app's theme is not in the JSON
    fig.layout.template = None  # fig is the caller's fresh Result.figures() output, rendered once
    tidy(fig, width_px=REPORT_PLOT_PX)  # subplot titles fitted to their panels, as on the app's pages
    fig, notes = compact(fig)
    doc = json.loads(fig.to_json())
    doc.get("layout", {}).pop("template", None)
    if template:
        text = json.dumps(template, sort_keys=True)
        key = hashlib.sha256(text.encode()).hexdigest()[:12]
        templates.setdefault(key, template)
        doc["wb_template"] = key
    return _escape(json.dumps(doc)), notes


def figure_bytes(result: Result) -> int:
    """Bytes a result's figures take in a report, as written there (lighter for display; the templates
    shared by every figure are counted once per report, not here)."""
    return sum(len(_figure(f, {})[0]) for f in result.figures())


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)[:2000]
    return str(v)


def _view(r: Result, index: int, templates: dict[str, dict], names: dict[str, str]) -> dict:
    figs = []
    for k, f in enumerate(r.figures()):
        text, notes = _figure(f, templates)
        figs.append({"id": f"{index}-{k}", "json": text, "notes": notes})
    title = r.title
    for data_id, name in names.items():  # an upload's server path: the name of the file the user uploaded
        title = title.replace(data_id, name)
    prov = r.to_json()["provenance"]
    return {"title": title, "summary": r.summary(), "passed": r.passed,
            "checks": [{**c.to_dict(), "value": _fmt(c.value), "threshold": _fmt(c.threshold)}
                       for c in r.checks],
            "metrics": [(k, _fmt(v)) for k, v in sorted(r.metrics.items())],
            "config": [(k, _fmt(v)) for k, v in r.config.items()],
            "provenance": [(k, _fmt(v)) for k, v in prov.items()], "figures": figs}


def render_report(results: list[Result], title: str = "CNN workbench report", lab: dict | None = None,
                  names: dict[str, str] | None = None) -> str:
    """HTML text of one report holding every result in order. ``names``: data id -> the name to show in
    titles (the app's uploads are server paths; the provenance table keeps the id itself).

    ``lab`` (optional) adds a graded lab sheet first: {"title", "student", "score", "total",
    "questions": [{"question", "prompt", "given", "prediction", "reference", "correct", "points", "of"}]}.
    """
    try:
        ver = version("cnn-workbench")
    except PackageNotFoundError:
        ver = "dev"
    templates: dict[str, dict] = {}
    views = [_view(r, i, templates, names or {}) for i, r in enumerate(results)]
    checks = [c for r in results for c in r.checks]
    return _ENV.get_template("report.html.j2").render(
        title=title, results=views, plotly_js=_plotly_js(), version=ver, templates=templates,
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
