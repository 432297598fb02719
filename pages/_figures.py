"""Figures fitted to the page they are drawn on: the page knows its own layout (the wide layout beside the
sidebar) and its renderer, a result's figures do not. Nothing is computed here; titles are shortened (full text
on hover) and colours Streamlit would rewrite are written in another notation.

Streamlit's Plotly element treats the colours #000001 .. #000040 as placeholders of its theme and swaps them for
its own palette in the browser, with ``theme=None`` too (streamlit/elements/lib/streamlit_plotly_theme.py). Plotly's
Inferno and Magma start at #000004, Streamlit's "category 3": the lowest values of every unsigned heat map were
drawn purple (or pink) in the app and black in reports. The same colour as ``rgb(0, 0, 4)`` is left alone.
"""

from __future__ import annotations

import re

from plotly.colors import hex_to_rgb

from workbench.core.plots import tidy

#: Streamlit's theme placeholders (#000001 .. #000040; a few more are reserved for future ones)
PLACEHOLDER = re.compile(r"^#0000[0-9]{2}$")

#: the plot area of a figure drawn across the main column of the app's wide layout at a 1400 px window, beside
#: the open sidebar (on screenshots six panels side by side are ~145-150 px apart; a little is kept as a gap):
#: column titles of subplots are fitted to this, not to the whole window
PLOT_WIDTH_PX = 860
#: an average glyph of plotly's subplot-title font on those screenshots, in px
CHAR_PX = 7.0
DEFAULT_HEIGHT_PX = 450  # plotly's, when a figure does not say


def _scale(scale):
    """A colour scale with every Streamlit placeholder colour written as rgb() (the same colour)."""
    return [[pos, f"rgb{hex_to_rgb(c)}" if isinstance(c, str) and PLACEHOLDER.match(c) else c] for pos, c in scale]


def unplaceholder(fig):
    """``fig``'s colour scales (traces, their markers and lines, colour axes) without Streamlit's placeholder
    colours, in place (see the module doc). Returns ``fig``."""
    holders = [t for t in fig.data] + [getattr(t, part) for t in fig.data for part in ("marker", "line")
                                       if part in t and getattr(t, part) is not None]
    holders += [fig.layout[k] for k in fig.layout if k.startswith("coloraxis")]
    for h in holders:
        if "colorscale" in h and h.colorscale:
            h.colorscale = _scale(h.colorscale)
    return fig


def fit(fig):
    """``fig`` with its titles fitted to the page, in place: subplot column titles to their panel's width
    (workbench.core.plots.tidy, given the page's plot width), row titles (the rotated ones on the right) to
    their row's height; colour scales freed of Streamlit's placeholder colours (:func:`unplaceholder`). Returns
    ``fig``."""
    unplaceholder(fig)
    tidy(fig, width_px=PLOT_WIDTH_PX)
    rows = [a for a in fig.layout.annotations if a.textangle in (90, -90) and a.text and a.xref == "paper"
            and a.yref == "paper" and "<br>" not in a.text]
    if not rows:
        return fig
    height = fig.layout.height or DEFAULT_HEIGHT_PX
    margin = fig.layout.margin
    plot_h = height - ((margin.t if margin.t is not None else 100) + (margin.b if margin.b is not None else 80))
    row_px = max(plot_h, 40) / len(rows)
    fit_chars = max(4, int(row_px / CHAR_PX * 0.95))
    for a in rows:
        if len(a.text) > fit_chars:
            a.update(hovertext=a.text, text=a.text[: fit_chars - 1].rstrip() + "…")
    return fig
