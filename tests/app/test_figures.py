"""Figures that read: the page-side tidy-up (titles that fit, readable log ticks) and one colour scale per
differently scaled panel in the shared overlay grid."""

import json

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plots import overlay_grid, tidy


def test_subplot_titles_that_would_overlap_are_shortened_with_the_full_text_on_hover():
    long = "integrated_gradients with a very long explanation of what it shows"
    fig = make_subplots(rows=1, cols=5, subplot_titles=[long, "short", "b", "c", "d"])
    tidy(fig)
    first = fig.layout.annotations[0]
    assert len(first.text) < len(long) and first.text.endswith("…") and first.hovertext == long
    assert fig.layout.annotations[1].text == "short" and fig.layout.annotations[1].hovertext is None


def test_a_long_figure_title_wraps_and_wide_log_axes_label_powers_of_ten_only():
    fig = go.Figure(go.Scatter(x=[1e-3, 1e2], y=[2, 8]))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")  # less than a decade: left alone, one tick per decade would show none
    fig.update_layout(title="word " * 40)
    tidy(fig)
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.exponentformat == "power"
    assert fig.layout.yaxis.dtick is None
    assert "<br>" in fig.layout.title.text


def test_signed_and_unsigned_maps_each_get_their_own_colour_bar():
    images = np.zeros((2, 8, 8, 3), np.float32)
    rng = np.random.default_rng(0)
    maps = [("ig", rng.standard_normal((2, 8, 8)), True), ("cam", rng.random((2, 8, 8)), False)]
    fig = overlay_grid(images, maps, ["a", "b"], "t")
    heat = [t for t in fig.data if t.type == "heatmap"]
    shown = [t for t in heat if t.showscale]
    assert len(shown) == 2  # one bar per column, first row only
    signed, unsigned = shown
    assert signed.zmid == 0 and signed.zmin == -1 and unsigned.zmin == 0
    assert signed.colorbar.x < unsigned.colorbar.x  # each under its own column


def test_the_page_fits_six_panel_titles_to_their_panels_and_row_titles_to_their_rows():
    """At the app's 1400 px window six panels get ~130 px each: titles that fit the whole window's share
    still ran into each other (LinearScope "Rows of A", the EEG method panels); rotated row titles longer
    than their row were cut at the figure's edge (attribution's "digits:21: 1 (p=0.99)")."""
    from pages._figures import CHAR_PX, PLOT_WIDTH_PX, fit

    titles = [f"template A_c: {i} (logit 6.37)" for i in range(6)]
    fig = make_subplots(rows=2, cols=6, subplot_titles=titles, row_titles=["digits:21: 1 (p=0.99) " * 2, "ok"])
    fig.update_layout(height=300)
    fit(fig)
    cols = [a for a in fig.layout.annotations if not a.textangle]
    assert all(len(a.text) * CHAR_PX <= PLOT_WIDTH_PX / 6 + CHAR_PX for a in cols), [a.text for a in cols]
    assert all(a.hovertext.startswith("template A_c") for a in cols)
    rows = [a for a in fig.layout.annotations if a.textangle]
    assert rows[0].text.endswith("…") and rows[0].hovertext.startswith("digits:21") and rows[1].text == "ok"


def test_the_page_writes_streamlits_placeholder_colours_another_way():
    """Streamlit swaps #000001 .. #000040 for its theme's palette in the browser (theme=None too); Inferno and
    Magma start at #000004, so the lowest values of unsigned maps were drawn purple in the app. Every heat map the
    page draws keeps its colours: the same colours, none of them a placeholder."""
    import re

    from pages._figures import fit, unplaceholder

    maps = [("IG", np.zeros((1, 8, 8)), True), ("Grad-CAM", np.zeros((1, 8, 8)), False)]
    fig = overlay_grid(np.zeros((1, 8, 8, 3)), maps, ["x"], "t")
    fig.add_trace(go.Scatter(x=[0], y=[0], marker={"color": [0], "colorscale": "Magma"}))
    fig.update_layout(coloraxis={"colorscale": "Inferno"})
    def scales(f) -> str:  # traces and colour axes; not the template (a Streamlit template's placeholders are meant)
        return json.dumps([t.to_plotly_json() for t in f.data] + [f.layout.coloraxis.to_plotly_json()], default=str)

    assert re.search(r"#0000[0-9]{2}", scales(fig))  # the planted case: plotly's own scales hold one
    fit(fig)
    assert not re.search(r"#0000[0-9]{2}", scales(fig))
    cam = next(t for t in fig.data if t.type == "heatmap" and t.zmin == 0)  # the unsigned (Inferno) map
    assert cam.colorscale[0][1] == "rgb(0, 0, 4)" and cam.colorscale[-1][1].lower() == "#fcffa4"  # Inferno's ends
    picker = unplaceholder(go.Figure(go.Heatmap(z=[[0, 1]], colorscale="Inferno")))
    assert picker.data[0].colorscale[0][1] == "rgb(0, 0, 4)"
