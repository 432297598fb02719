"""Figures of a SweepResult, from its stored arrays and info only (no cell is reloaded).

- curves: the headline metric against a numeric grid key, one line per other setting (and model), mean
  over seeds with a band of +- one standard deviation; a bar chart with error bars when no key is numeric;
- heat map: the headline metric over two grid keys (mean over seeds, and over any further keys);
- table: every group with its seeds and the headline mean +- sd.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def _numeric(values: list) -> bool:
    try:
        [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return not any(isinstance(v, bool) for v in values) and len(values) > 1


def _axis_key(grid: dict) -> str | None:
    """The grid key plotted on the x axis: the last one whose values are all numbers."""
    keys = [k for k, v in grid.items() if _numeric(v)]
    return keys[-1] if keys else None


def _series(result, x_key: str | None) -> dict:
    """Line label -> list of (x, mean, sd) for the headline metric, groups split by everything but x."""
    names, head = result.info.get("metric_names", []), result.info.get("headline", "")
    if head not in names:
        return {}
    j, out = names.index(head), {}
    mean, sd = result.arrays["mean"], result.arrays["sd"]
    multi = len(result.info.get("models", [])) > 1
    for i, g in enumerate(result.info.get("groups", [])):
        rest = {k: v for k, v in g["params"].items() if k != x_key}
        label = " ".join(([g["model"]] if multi else []) + [f"{k}={v}" for k, v in rest.items()]) or head
        x = float(g["params"][x_key]) if x_key else g["label"]
        out.setdefault(label, []).append((x, float(mean[i, j]), float(sd[i, j])))
    return out


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


def curves_figure(result) -> go.Figure:
    grid, head = result.info.get("grid", {}), result.info.get("headline", "")
    x_key = _axis_key(grid)
    series = _series(result, x_key)
    fig = go.Figure()
    n_seeds = len(result.info.get("seeds", []))
    for n, (label, pts) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        if x_key is None:
            fig.add_trace(go.Bar(x=[p[0] for p in pts], y=[p[1] for p in pts], name=label, marker_color=color,
                                 error_y={"type": "data", "array": [p[2] for p in pts]}))
            continue
        pts = sorted(pts)
        x, y, s = (np.array([p[k] for p in pts]) for k in range(3))
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([y + s, (y - s)[::-1]]),
                                 fill="toself", fillcolor=_rgba(color, 0.18), line={"width": 0},
                                 hoverinfo="skip", showlegend=False, legendgroup=label))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, line={"color": color},
                                 legendgroup=label, error_y={"type": "data", "array": s, "visible": False}))
    fig.update_layout(title=f"{head}: mean over {n_seeds} seed(s), band = +-1 sd",
                      xaxis_title=x_key or "setting", yaxis_title=head, height=420,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def heatmap_figure(result) -> go.Figure | None:
    grid, head = result.info.get("grid", {}), result.info.get("headline", "")
    names = result.info.get("metric_names", [])
    if len(grid) < 2 or head not in names:
        return None
    x_key = _axis_key(grid) or list(grid)[1]
    y_key = next(k for k in grid if k != x_key)
    xs, ys = grid[x_key], grid[y_key]
    j, mean = names.index(head), result.arrays["mean"]
    z = np.full((len(ys), len(xs)), np.nan)
    for yi, yv in enumerate(ys):
        for xi, xv in enumerate(xs):
            rows = [i for i, g in enumerate(result.info.get("groups", []))
                    if g["params"].get(x_key) == xv and g["params"].get(y_key) == yv]
            vals = [mean[i, j] for i in rows if np.isfinite(mean[i, j])]
            z[yi, xi] = float(np.mean(vals)) if vals else np.nan
    others = [k for k in grid if k not in (x_key, y_key)]
    more = len(result.info.get("models", [])) > 1 or others
    fig = go.Figure(go.Heatmap(z=z, x=[str(v) for v in xs], y=[str(v) for v in ys], colorscale="Viridis",
                               colorbar={"title": head[:24]},
                               text=[[f"{v:.4g}" for v in row] for row in z], texttemplate="%{text}"))
    fig.update_layout(title=f"{head} over {y_key} x {x_key} (mean over seeds"
                            + (f", {', '.join(others) or 'models'} averaged" if more else "") + ")",
                      xaxis_title=x_key, yaxis_title=y_key, height=380, margin={"l": 80, "r": 20, "t": 60, "b": 50})
    return fig


def table_figure(result) -> go.Figure | None:
    names, head = result.info.get("metric_names", []), result.info.get("headline", "")
    groups = result.info.get("groups", [])
    if head not in names or not groups:
        return None
    j = names.index(head)
    mean, sd, count = result.arrays["mean"], result.arrays["sd"], result.arrays["count"]
    cells = [[g["label"] for g in groups], [int(count[i, j]) for i in range(len(groups))],
             [f"{mean[i, j]:.4g} +- {sd[i, j]:.2g}" for i in range(len(groups))]]
    fig = go.Figure(go.Table(header={"values": ["setting", "seeds", f"{head} (mean +- sd)"]},
                             cells={"values": cells}))
    fig.update_layout(title="Per-setting table", height=min(120 + 28 * len(groups), 900),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def sweep_figures(result) -> list:
    if not result.info.get("groups"):
        return []
    figs = [curves_figure(result), heatmap_figure(result), table_figure(result)]
    return [f for f in figs if f is not None]
