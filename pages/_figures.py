"""Figures fitted to the page they are drawn on: the page knows its own layout (the wide layout beside the
sidebar), a result's figures do not. Nothing is computed here; only titles are shortened (full text on hover)."""

from __future__ import annotations

from workbench.core.plots import tidy

#: the plot area of a figure drawn across the main column of the app's wide layout at a 1400 px window, beside
#: the open sidebar (on screenshots six panels side by side are ~145-150 px apart; a little is kept as a gap):
#: column titles of subplots are fitted to this, not to the whole window
PLOT_WIDTH_PX = 860
#: an average glyph of plotly's subplot-title font on those screenshots, in px
CHAR_PX = 7.0
DEFAULT_HEIGHT_PX = 450  # plotly's, when a figure does not say


def fit(fig):
    """``fig`` with its titles fitted to the page, in place: subplot column titles to their panel's width
    (workbench.core.plots.tidy, given the page's plot width), row titles (the rotated ones on the right) to
    their row's height. Returns ``fig``."""
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
