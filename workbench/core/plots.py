"""Plotly building blocks shared by result classes (numpy in, figures out; no torch)."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DIVERGING = "RdBu_r"


def esc(text) -> str:
    """Escape a user-supplied string for plotly text (titles, labels, names): plotly.js renders a
    pseudo-HTML subset (links included), so user text must never carry tags. Entities display as text."""
    return html.escape(str(text), quote=True)


def robust_scale(m: np.ndarray, q: float = 99.5) -> np.ndarray:
    """Scale a map to [-1, 1] by its q-th percentile of |m| (so one hot pixel does not wash it out).
    Non-finite values stay non-finite so they remain visible as gaps."""
    finite = np.abs(m[np.isfinite(m)])
    s = float(np.percentile(finite, q)) if finite.size else 1.0
    return np.clip(m / (s if s > 0 else 1.0), -1, 1)


def overlay_grid(images: np.ndarray, maps: list[tuple[str, np.ndarray, bool]], row_titles: list[str],
                 title: str, opacity: float = 0.65) -> go.Figure:
    """Rows = images, columns = the input then one heat map per method, overlaid on the input.

    images: (N, H, W, 3) float in [0, 1]; maps: [(name, (N, H, W) array, signed)].
    Signed maps use a diverging scale centred on 0; unsigned maps run 0..1.
    """
    n, cols = images.shape[0], 1 + len(maps)
    fig = make_subplots(rows=n, cols=cols, horizontal_spacing=0.01, vertical_spacing=0.04,
                        column_titles=["input"] + [esc(name) for name, _, _ in maps],
                        row_titles=[esc(t) for t in row_titles])
    for r in range(n):
        rgb = (np.clip(images[r], 0, 1) * 255).astype(np.uint8)
        for c in range(cols):
            fig.add_trace(go.Image(z=rgb, opacity=1.0 if c == 0 else 0.45, hoverinfo="skip"), r + 1, c + 1)
            if c == 0:
                continue
            _, arr, signed = maps[c - 1]
            z = robust_scale(arr[r])
            fig.add_trace(go.Heatmap(
                z=z, zmin=-1 if signed else 0, zmax=1, zmid=0 if signed else None,
                colorscale=DIVERGING if signed else "Inferno", opacity=opacity,
                showscale=r == 0, hovertemplate="x=%{x} y=%{y}<br>%{z:.3f}<extra></extra>",
                colorbar=column_colorbar(fig, c + 1, "signed, 0 = white" if signed else "0 .. 1",
                                         SIGNED_TICKS if signed else UNSIGNED_TICKS)), r + 1, c + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)  # go.Image already pins aspect ratio and flips y
    fig.update_layout(title=esc(title), height=110 + 230 * n, margin={"l": 10, "r": 10, "t": 70, "b": 60})
    return fig


#: explicit ticks: with plotly.js's automatic ones (0, 0.2, ... 1 on a wide bar) it drew a bottom title over them
SIGNED_TICKS, UNSIGNED_TICKS = [-1, -0.5, 0, 0.5, 1], [0, 0.25, 0.5, 0.75, 1]


def column_colorbar(fig: go.Figure, col: int, title: str, ticks: list | None = None) -> dict:
    """A horizontal colour bar under subplot column ``col`` (1-based, first row's axis): one scale per panel,
    so a signed map's diverging bar never stands for a 0..1 map beside it. ``ticks``: tick values (the bar's
    title sits under them)."""
    name = "xaxis" if col == 1 else f"xaxis{col}"
    lo, hi = fig.layout[name].domain or (0, 1)
    return {"orientation": "h", "x": (lo + hi) / 2, "xanchor": "center", "len": 0.9 * (hi - lo), "lenmode": "fraction",
            "y": -0.01, "yanchor": "top", "thickness": 10, "title": {"text": title, "side": "bottom"},
            **({"tickvals": list(ticks)} if ticks is not None else {})}


def bars(labels: list[str], values: list[float], title: str, *, threshold: float | None = None,
         xlabel: str = "", orientation: str = "h") -> go.Figure:
    """A bar chart with an optional dashed threshold line (labels and title are escaped)."""
    labels, title = [esc(x) for x in labels], esc(title)
    if orientation == "h":
        fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", text=[f"{v:.3f}" for v in values]))
        fig.update_yaxes(autorange="reversed", automargin=True)
        fig.update_xaxes(title=xlabel)
        if threshold is not None:
            fig.add_vline(x=threshold, line_dash="dash", line_color="crimson",
                          annotation_text=f"threshold {threshold:g}")
    else:
        fig = go.Figure(go.Bar(x=labels, y=values, text=[f"{v:.3f}" for v in values]))
        fig.update_yaxes(title=xlabel)
        if threshold is not None:
            fig.add_hline(y=threshold, line_dash="dash", line_color="crimson",
                          annotation_text=f"threshold {threshold:g}")
    fig.update_layout(title=title, height=140 + 34 * max(len(labels), 3),
                      margin={"l": 10, "r": 30, "t": 60, "b": 40})
    return fig


#: the width a figure gets on a page (the app's wide layout at a 1400 px window) and an average glyph width:
#: enough to tell how many characters of a subplot title fit above its panel
PAGE_WIDTH_PX, CHAR_PX = 1150, 7.5
TITLE_LINE_CHARS = 95


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(1, chars - 1)].rstrip() + "…"


def _wrap(text: str, chars: int) -> str:
    """Break a long title at spaces into lines of at most ``chars`` characters (plotly's <br>)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def tidy(fig: go.Figure, width_px: float = PAGE_WIDTH_PX) -> go.Figure:
    """Make a figure read at a glance, in place: subplot titles wider than their own panel (its x-domain's
    share of ``width_px``) are shortened to fit it (the full title on hover), a long figure title wraps onto a
    second line, and log axes label whole powers of ten only (no bare "2 5" minor labels). Returns ``fig``."""
    titles = [a for a in fig.layout.annotations if a.showarrow is False and a.yanchor == "bottom"
              and a.xanchor == "center" and not a.textangle and a.text and a.xref == "paper"]
    per_row: dict[float, int] = {}
    for a in titles:
        per_row[round(a.y, 3)] = per_row.get(round(a.y, 3), 0) + 1
    panels = _panel_widths(fig)
    for a in titles:
        # its own panel's width (the x-domain it is centred over: a narrow panel beside a wide one gets a
        # shorter title); a title over no panel gets an equal share of its row, as before
        x, y = round(a.x, 3), round(a.y, 3)
        share = panels.get((x, y)) or panels.get((x,)) or 1 / per_row[y]
        fit = max(4, int(share * width_px / CHAR_PX))
        if "<br>" not in a.text and len(a.text) > fit:
            a.update(hovertext=a.text, text=_shorten(a.text, fit))
    text = fig.layout.title.text
    if text and "<br>" not in text and len(text) > TITLE_LINE_CHARS:
        fig.update_layout(title_text=_wrap(text, TITLE_LINE_CHARS))
        top = fig.layout.margin.t if fig.layout.margin.t is not None else 80
        fig.update_layout(margin_t=max(top, 90))
    spans = _log_spans(fig)
    for name in [k for k in fig.layout if k.startswith(("xaxis", "yaxis"))]:
        ax = fig.layout[name]
        # only over 1.5 decades or more: a narrower axis with one tick per decade would show no label at all
        if ax.type == "log" and ax.dtick is None and ax.tickvals is None and spans.get(name, 0) >= 1.5:
            ax.update(dtick=1, exponentformat="power", minor={"showgrid": True})
    return fig


def _panel_widths(fig: go.Figure) -> dict[tuple, float]:
    """Each subplot's x-domain as a fraction of the plot width, keyed by where plotly's make_subplots puts its
    title: (x-domain centre, top of its y-domain), both rounded to 3 places, and by the centre alone (the
    narrowest panel there) for a title over no single panel's top, e.g. a column title."""
    widths: dict[tuple, float] = {}
    for name in [k for k in fig.layout if k.startswith("xaxis")]:
        ax = fig.layout[name]
        if not ax.domain or len(ax.domain) != 2:
            continue
        centre, width = round((ax.domain[0] + ax.domain[1]) / 2, 3), float(ax.domain[1] - ax.domain[0])
        widths[(centre,)] = min(widths.get((centre,), width), width)
        y = fig.layout[f"yaxis{ax.anchor[1:]}"] if ax.anchor and ax.anchor.startswith("y") else None
        if y is not None and y.domain:
            widths[(centre, round(y.domain[1], 3))] = width
    return widths


def _log_spans(fig: go.Figure) -> dict[str, float]:
    """Decades of positive data on each axis (layout name, e.g. "xaxis2" -> 3.2)."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for tr in fig.data:
        for letter in ("x", "y"):
            values = getattr(tr, letter, None) if letter in tr else None
            ref = (getattr(tr, f"{letter}axis", None) if f"{letter}axis" in tr else None) or letter
            if values is None:
                continue
            v = np.asarray(values, dtype=object).ravel()
            v = np.array([float(x) for x in v if isinstance(x, (int, float, np.number)) and x > 0])
            if v.size:
                name = f"{letter}axis{ref[1:]}"
                lo[name] = min(lo.get(name, np.inf), float(v.min()))
                hi[name] = max(hi.get(name, 0.0), float(v.max()))
    return {k: float(np.log10(hi[k] / lo[k])) for k in lo}
