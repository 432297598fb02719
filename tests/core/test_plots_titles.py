"""workbench.core.plots.tidy fits each subplot title to its own panel: the panel's x-domain share of the
figure width, so a narrow panel gets a shorter title than a wide one beside it (full text on hover)."""

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plots import CHAR_PX, PAGE_WIDTH_PX, tidy

LONG = "integrated gradients, signed relevance of every input pixel for the predicted class"


def _domain_px(fig: go.Figure, i: int, width_px: float) -> float:
    lo, hi = fig.layout["xaxis" if i == 0 else f"xaxis{i + 1}"].domain
    return (hi - lo) * width_px


def test_six_panels_of_unequal_width_each_get_a_title_that_fits_their_own_panel():
    fig = make_subplots(rows=1, cols=6, column_widths=[4, 1, 1, 1, 1, 2], subplot_titles=[LONG] * 6)
    for c in range(6):
        fig.add_trace(go.Scatter(y=[0, 1]), 1, c + 1)
    tidy(fig)
    titles = list(fig.layout.annotations)
    for i, a in enumerate(titles):
        assert len(a.text) * CHAR_PX <= _domain_px(fig, i, PAGE_WIDTH_PX) + CHAR_PX, (i, a.text)
        assert a.hovertext == LONG and a.text.endswith("…")
    wide, narrow, middle = len(titles[0].text), len(titles[1].text), len(titles[5].text)
    assert wide > middle > narrow  # by panel width, not an equal share of the row
    assert len({len(a.text) for a in titles[1:5]}) == 1
    assert narrow >= int(_domain_px(fig, 1, PAGE_WIDTH_PX) / CHAR_PX) - 1  # not shorter than it has to be


def test_a_panel_spanning_the_row_keeps_its_title_while_six_narrow_ones_below_are_shortened():
    specs = [[{"colspan": 6}, None, None, None, None, None], [{}] * 6]
    fig = make_subplots(rows=2, cols=6, specs=specs, subplot_titles=[LONG] + [LONG] * 6)
    tidy(fig, width_px=1150)
    top, *row = fig.layout.annotations
    assert top.text == LONG and top.hovertext is None  # 1150 px is wide enough for it whole
    assert all(a.text.endswith("…") and len(a.text) * CHAR_PX <= 1150 / 6 for a in row)
    short = make_subplots(rows=1, cols=6, subplot_titles=["ig", "cam", "lrp", "sal", "occ", "x"])
    tidy(short)
    assert [a.text for a in short.layout.annotations] == ["ig", "cam", "lrp", "sal", "occ", "x"]
