"""Attribution figures for 1-D signals (numpy in, plotly out; no torch): per sample, the signal as a line and
under it one coloured band per method (the map over time, on the pictures' colour scales: signed maps diverge
around white at 0, unsigned ones run 0 .. 1), all on one time axis: milliseconds when the result knows the
sampling rate, else sample index."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plots import DIVERGING, SIGNED_TICKS, UNSIGNED_TICKS, esc, robust_scale


def time_axis(n: int, sampling_rate: float | None) -> tuple[np.ndarray, str]:
    """Positions of ``n`` samples and the axis title: ms at ``sampling_rate`` Hz, else the sample index."""
    if sampling_rate:
        return np.arange(n) * 1000.0 / float(sampling_rate), f"time (ms, {float(sampling_rate):g} Hz)"
    return np.arange(n, dtype=np.float64), "sample"


def _colorbar(signed: bool, row_frac: float) -> dict:
    return {"title": {"text": "signed, 0 = white" if signed else "0 .. 1", "side": "right"},
            "tickvals": SIGNED_TICKS if signed else UNSIGNED_TICKS, "len": row_frac, "y": 1 - row_frac / 2,
            "x": 1.02 if signed else 1.12, "thickness": 12}


def signal_grid(signals: np.ndarray, maps: list[tuple[str, np.ndarray, bool]], titles: list[str], title: str,
                sampling_rate: float | None = None) -> go.Figure:
    """``signals`` (N, C, T) as shown (channels drawn one line each), ``maps`` [(name, (N, T) map, signed)],
    ``titles`` one per sample. Rows: per sample the signal, then one band per map."""
    n, t_len = signals.shape[0], signals.shape[-1]
    t, xlabel = time_axis(t_len, sampling_rate)
    per = 1 + len(maps)
    heights = ([2.0] + [0.7] * len(maps)) * n
    subtitles = []
    for r in range(n):
        subtitles += [esc(titles[r])] + [""] * len(maps)
    fig = make_subplots(rows=n * per, cols=1, shared_xaxes=True, vertical_spacing=0.012,
                        row_heights=heights, subplot_titles=subtitles)
    shown: set = set()
    for r in range(n):
        base = r * per + 1
        for c in range(signals.shape[1]):
            fig.add_trace(go.Scatter(x=t, y=signals[r, c], mode="lines", line={"color": "#444", "width": 1},
                                     name="signal", showlegend=False,
                                     hovertemplate="%{x:.2f}: %{y:.3f}<extra>signal</extra>"), base, 1)
        for k, (name, arr, signed) in enumerate(maps):
            z = robust_scale(np.asarray(arr[r], np.float64).reshape(1, -1))
            fig.add_trace(go.Heatmap(
                x=t, y=[esc(name)], z=z, zmin=-1 if signed else 0, zmax=1, zmid=0 if signed else None,
                colorscale=DIVERGING if signed else "Inferno", showscale=signed not in shown,
                colorbar=_colorbar(signed, 0.3), hovertemplate="%{x:.2f}: %{z:.3f}<extra>" + esc(name) + "</extra>"),
                base + 1 + k, 1)
            shown.add(signed)
    fig.update_yaxes(showticklabels=True, tickfont={"size": 10})
    fig.update_xaxes(title_text=xlabel, row=n * per, col=1)
    fig.update_layout(title=esc(title), height=90 + n * (150 + 50 * len(maps)),
                      margin={"l": 150, "r": 110, "t": 80, "b": 50})
    return fig


def row_titles(info: dict, arrays: dict, n: int) -> list[str]:
    """Per sample: id, explained class and its probability, and on a pitch model the predicted pitch in Hz."""
    ids, names = info.get("ids", []), info.get("target_names", [])
    tgt, probs = arrays["target"], arrays["probs"]
    pitch = info.get("pitch_hz") or []
    out = []
    for i in range(n):
        head = f"{ids[i] if i < len(ids) else i}: {names[i] if i < len(names) else int(tgt[i])} " \
               f"(p={probs[i, int(tgt[i])]:.2f})"
        out.append(head + (f" · predicted pitch {pitch[i]:.1f} Hz" if i < len(pitch) else ""))
    return out
