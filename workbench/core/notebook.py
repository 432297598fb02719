"""A Result drawn in a notebook (``Result._repr_html_``): title, checks with pass/FAIL, metrics, and the
result's own Plotly figures, offline.

Every user string is escaped as the HTML report does (``markupsafe.escape``, the escaping of its Jinja2
autoescape); figure JSON comes from plotly's ``to_html``, which writes ``<``, ``>`` and ``/`` as unicode
escapes, so no label can close the script block. plotly.js is inlined once per process, in the first
result drawn with figures (as plotly's own ``notebook`` renderer does); later outputs reuse
``window.Plotly`` and say so in one line if it is missing (e.g. a reopened notebook whose first figure
output was cleared). Nothing is fetched from the network.
"""

from __future__ import annotations

import threading

from markupsafe import escape

_STATE = {"plotlyjs_sent": False}
_LOCK = threading.Lock()
_STYLE = ("<style>.wb-r{font-family:system-ui,sans-serif;font-size:13px;max-width:1100px}"
          ".wb-r table{border-collapse:collapse;margin:4px 0}.wb-r td,.wb-r th{padding:2px 8px;"
          "border-bottom:1px solid #ddd;text-align:left}.wb-pass{color:#137333}.wb-fail{color:#c5221f;"
          "font-weight:bold}</style>")
_MISSING = ("<script>if(typeof window.Plotly==='undefined'){document.currentScript.insertAdjacentHTML("
            "'afterend','<p>plotly.js is not loaded in this page: re-run the first workbench result cell, "
            "or write a report with wb.report([r], &quot;r.html&quot;).</p>')}</script>")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def _checks(result) -> str:
    rows = "".join(
        f"<tr><td class='{'wb-pass' if c.passed else 'wb-fail'}'>{'pass' if c.passed else 'FAIL'}</td>"
        f"<td>{escape(c.name)}</td><td>{escape(_fmt(c.value))}</td><td>{escape(_fmt(c.threshold))}</td>"
        f"<td>{escape(c.message)}</td></tr>" for c in result.checks)
    return ("<table><tr><th></th><th>check</th><th>value</th><th>threshold</th><th></th></tr>"
            f"{rows}</table>") if rows else ""


def _metrics(result) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(_fmt(v))}</td></tr>"
                   for k, v in sorted(result.metrics.items()))
    return f"<details open><summary>metrics ({len(result.metrics)})</summary><table>{rows}</table></details>" \
        if rows else ""


def _provenance(result) -> str:
    p = result.provenance
    items = [("model", p.model_id), ("weights sha256", p.weights_sha256[:16]), ("data", p.data_id),
             ("seed", p.seed), ("device", p.device), ("dtype", p.dtype), ("duration s", p.duration_s)]
    return "<p>" + " &middot; ".join(f"{escape(k)}: {escape(_fmt(v))}" for k, v in items if v != "") + "</p>"


def _figures(figs: list, include_plotlyjs: bool) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    parts = []
    for i, fig in enumerate(figs):
        fig = go.Figure(fig)
        if not fig.layout.template.to_plotly_json():
            fig.update_layout(template="plotly_white")  # as in the HTML report
        parts.append(pio.to_html(fig, include_plotlyjs=include_plotlyjs and i == 0, full_html=False,
                                 config={"displaylogo": False}))
    return "".join(parts)


def result_html(result, *, standalone: bool = False) -> str:
    """HTML of one result for a notebook output (``standalone``: always inline plotly.js)."""
    figs = result.figures()
    with _LOCK:
        first = standalone or (bool(figs) and not _STATE["plotlyjs_sent"])
        if figs and not standalone:
            _STATE["plotlyjs_sent"] = True
    verdict = "all checks pass" if result.passed else \
        f"{sum(not c.passed for c in result.checks)} of {len(result.checks)} checks FAIL"
    head = (f"<h3>{escape(result.title)}</h3><p class='{'wb-pass' if result.passed else 'wb-fail'}'>"
            f"{escape(verdict)}</p>")
    summary = f"<p>{escape(result.summary())}</p>" if result.summary() else ""
    body = _figures(figs, first) if figs else ""
    guard = _MISSING if figs and not first else ""
    return (f"<div class='wb-r'>{_STYLE}{head}{summary}{_checks(result)}{_metrics(result)}"
            f"{_provenance(result)}{guard}{body}</div>")


def result_text(result) -> str:
    """Plain-text fallback: title, verdict, checks."""
    lines = [result.title] + [f"  {'pass' if c.passed else 'FAIL'}  {c.name}: {_fmt(c.value)} ({c.message})"
                              for c in result.checks]
    return "\n".join(lines)
