"""Plotly figures of the transferability result, from stored numpy arrays only (no torch), and the
paper's released numbers.

PAPER_ACC: Yosinski et al. 2014 (arXiv:1411.1792), top-1 on the 500-class task B, recomputed from the
training logs released in github.com/yosinski/convnet_transfer (per run, the mean of the 10 best
validation values, then the mean over runs) [digest section 3, tag C/V]. Rows n = 1..7, columns
BnB, BnB+, AnB, AnB+ (our TREATMENTS order). baseB = 0.625. Random frozen features were trained on the
1000-class task (base 0.576): n = 1 0.492, n = 2 0.403, n >= 3 near chance.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PAPER_ACC = np.array([  # BnB, BnB+, AnB, AnB+
    [.627, .618, .628, .637],
    [.624, .622, .624, .636],
    [.621, .631, .619, .643],
    [.605, .629, .600, .640],
    [.594, .630, .578, .645],
    [.619, .628, .581, .646],
    [.623, .627, .543, .647]])
PAPER_BASE = 0.625
PAPER_RANDOM = (np.array([1, 2]), np.array([.492, .403]), 0.576)  # n, accuracy, its 1000-class base

KEYS = ("bnb", "bnb_plus", "anb", "anb_plus", "random_frozen")
NAMES = {"bnb": "BnB (selffer, frozen)", "bnb_plus": "BnB+ (selffer, fine-tuned)",
         "anb": "AnB (transfer, frozen)", "anb_plus": "AnB+ (transfer, fine-tuned)",
         "random_frozen": "random frozen layers"}
COLORS = {"bnb": "#1f77b4", "bnb_plus": "#17becf", "anb": "#d62728", "anb_plus": "#ff7f0e",
          "random_frozen": "#7f7f7f", "base": "#2ca02c"}
DASH = {"bnb": "solid", "bnb_plus": "dash", "anb": "solid", "anb_plus": "dash", "random_frozen": "dot"}
JITTER = {"bnb": -0.12, "bnb_plus": -0.06, "anb": 0.06, "anb_plus": 0.12, "random_frozen": 0.0}


def masked_mean(acc: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of (S, T, K) where mask is 1; returns (T, K) mean and a (T, K) 'any' flag."""
    cnt = mask.sum(0)
    return np.where(cnt > 0, (acc * mask).sum(0) / np.maximum(cnt, 1), 0.0), cnt > 0


def _band(fig: go.Figure, x, top, bottom, color: str, name: str, col: int) -> None:
    """Shade between two curves where bottom < top (a 'loss' band)."""
    lo = np.minimum(bottom, top)
    fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([top, lo[::-1]]), fill="toself",
                             fillcolor=color, line={"width": 0}, name=name, hoverinfo="skip",
                             legendgroup=name, showlegend=col == 1), 1, col)


def _curves(fig: go.Figure, x: np.ndarray, mean: dict, col: int, seeds: dict | None = None) -> None:
    for k, y in mean.items():
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=NAMES[k], legendgroup=k, showlegend=col == 1,
                                 line={"color": COLORS[k], "dash": DASH[k]}, marker={"size": 7}), 1, col)
        if seeds is not None:
            pts = seeds[k]
            fig.add_trace(go.Scatter(x=np.repeat(x, pts.shape[0]).reshape(len(x), -1).T.ravel() + JITTER[k],
                                     y=pts.ravel(), mode="markers", legendgroup=k, showlegend=False,
                                     marker={"color": COLORS[k], "size": 5, "opacity": 0.55, "symbol": "circle-open"},
                                     name=f"{NAMES[k]} per seed"), 1, col)


def accuracy_figure(cuts, acc, mask, base_b, title: str) -> go.Figure:
    """Accuracy vs n: ours (left) beside the paper's released numbers (right). acc/mask (S, 5, K),
    base_b (S,) accuracies in [0, 1]."""
    fig = make_subplots(1, 2, subplot_titles=(title, "Yosinski et al. 2014, released logs (ImageNet, 500/500)"),
                        horizontal_spacing=0.08)
    x = np.asarray(cuts, dtype=float)
    mean, has = masked_mean(acc, mask)
    ours = {k: np.where(has[i], mean[i], np.nan) for i, k in enumerate(KEYS) if has[i].any()}  # NaN: a gap
    per_seed = {k: np.where(mask[:, i] > 0, acc[:, i], np.nan) for i, k in enumerate(KEYS) if k in ours}
    paper = {k: PAPER_ACC[:, i] for i, k in enumerate(KEYS[:4])}
    for col, (m, base, xs, seeds, bases) in enumerate(
            [(ours, float(base_b.mean()), x, per_seed, base_b), (paper, PAPER_BASE, np.arange(1.0, 8.0), None,
                                                                   np.array([PAPER_BASE]))], start=1):
        line_x = np.array([0.0, xs.max()])
        if "bnb" in m and np.isfinite(m["bnb"]).all():
            _band(fig, xs, np.full(len(xs), base), m["bnb"], "rgba(31,119,180,0.15)", "co-adaptation (base − BnB)", col)
            if "anb" in m and np.isfinite(m["anb"]).all():
                _band(fig, xs, m["bnb"], m["anb"], "rgba(214,39,40,0.13)", "specificity (BnB − AnB)", col)
        fig.add_trace(go.Scatter(x=line_x, y=[base, base], mode="lines", line={"color": COLORS["base"], "dash": "dash"},
                                 name="baseB (mean)", legendgroup="base", showlegend=col == 1), 1, col)
        fig.add_trace(go.Scatter(x=np.zeros(len(bases)), y=bases, mode="markers", name="baseB per seed",
                                 marker={"color": COLORS["base"], "size": 8}, legendgroup="base",
                                 showlegend=False), 1, col)
        _curves(fig, xs, m, col, seeds)
    fig.update_xaxes(title="layers copied n (0 = baseB)", dtick=1)
    fig.update_yaxes(title="top-1 accuracy on task B", col=1)
    fig.update_layout(title="Transferability of features: accuracy vs the number of copied layers",
                      height=520, legend={"orientation": "h", "y": -0.2}, margin={"t": 80, "b": 40})
    return fig


def relative_figure(cuts, acc, mask, base_b) -> go.Figure:
    """Both curves divided by their own baseB, on one axis: compare shapes, not scales."""
    fig = go.Figure()
    mean, has = masked_mean(acc, mask)
    base = float(base_b.mean())
    for i, k in enumerate(KEYS):
        if has[i].all():
            fig.add_trace(go.Scatter(x=list(cuts), y=mean[i] / base, mode="lines+markers", name=f"ours: {NAMES[k]}",
                                     line={"color": COLORS[k], "dash": DASH[k]}))
        if i < 4:
            fig.add_trace(go.Scatter(x=np.arange(1, 8), y=PAPER_ACC[:, i] / PAPER_BASE, mode="lines+markers",
                                     name=f"paper: {NAMES[k]}", opacity=0.55,
                                     line={"color": COLORS[k], "dash": "dot", "width": 1.5},
                                     marker={"symbol": "diamond-open"}))
    n, a, b = PAPER_RANDOM
    fig.add_trace(go.Scatter(x=n, y=a / b, mode="markers", name="paper: random features (1000-class, ÷ 0.576)",
                             marker={"color": COLORS["random_frozen"], "symbol": "x", "size": 9}))
    fig.add_hline(y=1.0, line_dash="dash", line_color=COLORS["base"], annotation_text="baseB")
    fig.update_layout(title="Relative accuracy (÷ baseB): this run vs the paper", height=460,
                      xaxis={"title": "layers copied n", "dtick": 1}, yaxis={"title": "accuracy / baseB"})
    return fig


def grid_figure(cuts, acc, mask, base, title: str = "") -> go.Figure:
    """The cell grid: mean ± seed std per (treatment, n), with the base networks as a first column."""
    mean, has = masked_mean(acc, mask)
    std = np.sqrt(np.where(mask.sum(0) > 0, ((acc - mean) ** 2 * mask).sum(0) / np.maximum(mask.sum(0), 1), 0))
    z = [[float(mean[i, j]) if has[i, j] else None for j in range(len(cuts))] for i in range(len(KEYS))]
    text = [[f"{mean[i, j]:.3f} ± {std[i, j]:.3f}" if has[i, j] else "—" for j in range(len(cuts))]
            for i in range(len(KEYS))]
    fig = go.Figure(go.Heatmap(z=z, x=[f"n={c}" for c in cuts], y=[NAMES[k] for k in KEYS], text=text,
                               texttemplate="%{text}", colorscale="Viridis", colorbar={"title": "top-1"},
                               hovertemplate="%{y}, %{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    title = title or (f"Grid of cells (mean ± std over {acc.shape[0]} seed(s)); baseA {base[:, 0].mean():.3f}, "
                      f"baseB {base[:, 1].mean():.3f}")
    fig.update_layout(title=title, height=360, margin={"l": 10, "t": 60})
    return fig


def cka_figure(cka_ab, cka_b_anbp, layers, view_cut: int, has_anbp: bool) -> go.Figure:
    """Layer x layer linear CKA heat maps (values in [0, 1])."""
    right = f"baseB vs AnB+ (n={view_cut})" if has_anbp else "baseB vs AnB+ (not run)"
    fig = make_subplots(1, 2, subplot_titles=("baseA vs baseB", right), horizontal_spacing=0.12)
    for col, m in enumerate([cka_ab, cka_b_anbp], start=1):
        fig.add_trace(go.Heatmap(z=m, x=list(layers), y=list(layers), zmin=0, zmax=1, colorscale="Viridis",
                                 text=np.round(m, 2), texttemplate="%{text}", showscale=col == 2,
                                 colorbar={"title": "CKA"}), 1, col)
    fig.update_xaxes(title="baseB layer")
    fig.update_yaxes(title="baseA layer", col=1)
    fig.update_yaxes(title="AnB+ layer", col=2)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Linear CKA between layers (task B test inputs)", height=460)
    return fig


def depth_figure(cka_diag, svcca_diag, logme_layers, layers) -> go.Figure:
    """CKA and SVCCA of baseA vs baseB per layer (mean and per seed); LogME of each layer for task B."""
    fig = make_subplots(1, 2, subplot_titles=("baseA vs baseB, same layer", "LogME of layer-n features for task B"))
    x = list(layers)
    for name, m, color in (("linear CKA", cka_diag, "#9467bd"), ("SVCCA (mean ρ)", svcca_diag, "#8c564b")):
        fig.add_trace(go.Scatter(x=x, y=m.mean(0), mode="lines+markers", name=name, line={"color": color}), 1, 1)
        for row in m:
            fig.add_trace(go.Scatter(x=x, y=row, mode="markers", showlegend=False, name=f"{name} per seed",
                                     marker={"color": color, "symbol": "circle-open", "size": 6}), 1, 1)
    for name, row, color in (("baseA features", logme_layers[0], COLORS["anb"]),
                             ("random-init features", logme_layers[1], COLORS["random_frozen"])):
        fig.add_trace(go.Scatter(x=x, y=row, mode="lines+markers", name=name, line={"color": color}), 1, 2)
    fig.update_yaxes(title="similarity", range=[0, 1.05], col=1)
    fig.update_yaxes(title="LogME (per sample)", col=2)
    fig.update_layout(title="From general to specific: similarity and transferability by depth", height=430)
    return fig


def scores_figure(scores, labels: list[str]) -> go.Figure:
    """Table of LEEP (<= 0) and LogME per candidate source for task B."""
    fig = go.Figure(go.Table(header={"values": ["source for task B", "LEEP (≤ 0, higher = better)",
                                                "LogME, penultimate layer (higher = better)"]},
                             cells={"values": [labels, [f"{v:.4f}" for v in scores[:, 0]],
                                               [f"{v:.4f}" for v in scores[:, 1]]]}))
    fig.update_layout(title="Transferability scores of candidate sources (mean over seeds)", height=260,
                      margin={"t": 50, "b": 10})
    return fig


def umap_figure(emb_base, emb_transfer, labels, class_names: list[str], titles: tuple[str, str]) -> go.Figure:
    """UMAP scatter (N, 2) of two networks' features, colored by task-B class."""
    fig = make_subplots(1, 2, subplot_titles=titles, horizontal_spacing=0.06)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    for col, emb in enumerate([emb_base, emb_transfer], start=1):
        for c in np.unique(labels):
            sel = labels == c
            name = class_names[int(c)] if int(c) < len(class_names) else str(int(c))
            fig.add_trace(go.Scattergl(x=emb[sel, 0], y=emb[sel, 1], mode="markers", name=f"class {name}",
                                       legendgroup=str(c), showlegend=col == 1,
                                       marker={"size": 5, "color": palette[int(c) % len(palette)]}), 1, col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title="UMAP of one layer's features on task B's test inputs", height=460)
    return fig
