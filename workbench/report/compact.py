"""Figures made lighter for the report, where the figure allows it (the result's arrays.npz keeps every value).

A report holds one copy of plotly.js (~4.8 MB) and then every figure's JSON: large maps and long traces
dominate it. For display only: float64 arrays are sent as float32 (seven significant digits, more than a
screen shows); a heat map or picture larger than ``MAX_SIDE`` pixels a side is block-averaged (or strided, for
integer pictures) down to it; a line of more than ``MAX_POINTS`` points keeps each bucket's first, minimum,
maximum and last point (peaks survive, unlike a plain stride). Marker-only scatters are left whole (every
point may be a sample the reader looks for). Each change is reported as one line shown under the figure.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

MAX_SIDE = 256
MAX_POINTS = 4000
_ARRAY_KEYS = ("x", "y", "z", "customdata", "text", "hovertext")


def compact(fig) -> tuple[object, list[str]]:
    """A copy of a Plotly figure made lighter for display, and one line per change made (empty: none)."""
    import plotly.graph_objects as go

    fig = go.Figure(fig)
    notes: list[str] = []
    for trace in fig.data:
        if trace.type in ("heatmap", "image", "contour"):
            note = _shrink_map(trace)
        elif trace.type in ("scatter", "scattergl") and "lines" in str(trace.mode or "lines"):
            note = _thin_line(trace)
        else:
            note = ""
        if note:
            notes.append(note)
        _as_float32(trace)
    counts: dict[str, int] = {}
    for n in notes:  # six panels shrunk alike: one line
        counts[n] = counts.get(n, 0) + 1
    return fig, [n if k == 1 else f"{k} x {n}" for n, k in counts.items()]


def _array(trace, key: str):
    v = getattr(trace, key, None) if key in trace else None
    if v is None or isinstance(v, (str, dict)):
        return None
    try:
        return np.asarray(v)
    except (ValueError, TypeError):  # ragged lists: leave them as they are
        return None


def _as_float32(trace) -> None:
    for key in _ARRAY_KEYS:
        a = _array(trace, key)
        if a is not None and a.dtype == np.float64 and a.size > 64:
            trace[key] = None  # plotly skips an assignment equal in value to what it holds (same numbers, new dtype)
            trace[key] = a.astype(np.float32)


def _shrink_map(trace) -> str:
    """Each axis over MAX_SIDE is reduced on its own (an EEG map keeps its 30 channel rows, only its 384
    time columns are averaged in pairs)."""
    z = _array(trace, "z")
    if z is None or z.ndim < 2 or max(z.shape[:2]) <= MAX_SIDE or z.dtype.kind not in "fiub":
        return ""
    h, w = z.shape[:2]
    fy, fx = math.ceil(h / MAX_SIDE), math.ceil(w / MAX_SIDE)
    if z.dtype.kind == "f":  # block mean, NaN-aware (a masked cell stays masked only if its whole block is)
        padded = np.pad(z.astype(np.float64), [(0, -h % fy), (0, -w % fx)] + [(0, 0)] * (z.ndim - 2),
                        constant_values=np.nan)
        blocks = padded.reshape(padded.shape[0] // fy, fy, padded.shape[1] // fx, fx, *z.shape[2:])
        with warnings.catch_warnings():  # "mean of empty slice": an all-NaN block stays NaN, which is right
            warnings.simplefilter("ignore", RuntimeWarning)
            small = np.nanmean(blocks, axis=(1, 3))
    else:  # integer pictures (RGB bytes): a stride keeps them integers
        small = z[::fy, ::fx]
    trace["z"] = small
    for key in ("customdata", "text", "hovertext"):
        a = _array(trace, key)
        if a is not None and a.shape[:2] == (h, w):
            trace[key] = a[::fy, ::fx]
    for key, n, f, keep in (("x", w, fx, small.shape[1]), ("y", h, fy, small.shape[0])):
        a = _array(trace, key)
        if a is not None and a.ndim == 1 and len(a) == n and f > 1:
            trace[key] = a[::f][:keep]
    if trace.type == "image" and "dx" in trace:  # keep the picture's size on its axes
        trace["dx"], trace["dy"] = (trace.dx or 1) * fx, (trace.dy or 1) * fy
    return (f"{trace.type.replace('heatmap', 'heat map')}: {h}x{w} shown as {small.shape[0]}x{small.shape[1]} "
            f"(mean of {fy}x{fx} blocks)")


def _thin_line(trace) -> str:
    y = _array(trace, "y")
    if y is None or y.ndim != 1 or len(y) <= MAX_POINTS or y.dtype.kind not in "fiu":
        return ""
    x = _array(trace, "x")
    n = len(y)
    keep = _min_max_index(y, MAX_POINTS // 4)
    trace["y"] = y[keep]
    if x is not None and len(x) == n:
        trace["x"] = x[keep]
    elif x is None:
        trace["x"] = keep  # the points' own positions, which plotly would have used
    for key in ("customdata", "text", "hovertext"):
        a = _array(trace, key)
        if a is not None and len(a) == n:
            trace[key] = a[keep]
    return f"line: {n} points shown as {len(keep)} (first, min, max and last of each bucket)"


def _min_max_index(y: np.ndarray, buckets: int) -> np.ndarray:
    """Indices of the first, minimum, maximum and last point of ``buckets`` equal slices of ``y``, sorted."""
    edges = np.linspace(0, len(y), buckets + 1).astype(int)
    idx = []
    finite = np.where(np.isfinite(y), y, np.nan) if y.dtype.kind == "f" else y.astype(np.float64)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        part = finite[a:b]
        idx += [a, b - 1]
        if not np.isnan(part).all():
            idx += [a + int(np.nanargmin(part)), a + int(np.nanargmax(part))]
    return np.unique(np.asarray(idx, dtype=np.int64))
