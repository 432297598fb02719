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
                showscale=(r == 0 and c == cols - 1), hovertemplate="x=%{x} y=%{y}<br>%{z:.3f}<extra></extra>",
                colorbar={"title": "relative", "len": 0.5}), r + 1, c + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)  # go.Image already pins aspect ratio and flips y
    fig.update_layout(title=esc(title), height=60 + 230 * n, margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig


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
