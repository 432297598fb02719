"""Plotly figures of kernel_spectra, built from stored numpy arrays only (no torch, no recomputation beyond
histogramming and analytic reference curves)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analyzers.kernel_spectra.esd import ALPHA_HIGH, ALPHA_LOW, marchenko_pastur

EEG_BANDS = (("delta", 0.5, 4), ("theta", 4, 8), ("alpha", 8, 13), ("beta", 13, 30), ("gamma", 30, 100))
FLAG_COLORS = ("#2ca02c", "#ff7f0e", "#d62728", "#7f7f7f", "#bbbbbb", "#c5b0d5")
PALETTE = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
LAYOUT = {"margin": {"l": 10, "r": 10, "t": 70, "b": 40}, "template": "plotly_white"}


def _short(names: list[str]) -> list[str]:
    return [n if len(n) <= 28 else "…" + n[-27:] for n in names]


def spectral_norms(layers: list[str], fft: np.ndarray, zero: np.ndarray, folded: np.ndarray, title: str) -> go.Figure:
    """Grouped bars per layer: FFT (circular), exact with the layer's padding, with BatchNorm folded in."""
    x = _short(layers)
    fig = go.Figure([go.Bar(name="FFT method (circular padding)", x=x, y=fft),
                     go.Bar(name="exact, layer's own padding (Lanczos on A^T A)", x=x,
                            y=np.where(zero > 0, zero, np.nan)),  # -1 = not computed (layer too large)
                     go.Bar(name="with BatchNorm folded in (used in the bound)", x=x, y=folded)])
    fig.update_layout(title=title, barmode="group", yaxis={"type": "log", "title": "largest singular value"},
                      height=420, legend={"orientation": "h", "y": -0.35}, **LAYOUT)
    return fig


def layer_table(layers: list[str], sizes: list, cols: dict[str, np.ndarray], notes: list[str]) -> go.Figure:
    """Per-layer numbers: input size, the three top singular values, the dense check, how exact the FFT is."""
    fmt = {k: [f"{v:.5g}" if v >= 0 else "-" for v in vals] for k, vals in cols.items()}
    header = ["layer", "input size", *cols, "FFT method"]
    cells = [layers, ["x".join(map(str, s)) or "(vector)" for s in sizes], *fmt.values(), notes]
    fig = go.Figure(go.Table(header={"values": header, "align": "left"}, cells={"values": cells, "align": "left"},
                             columnwidth=[3, 2, 2, 2, 2, 2, 5]))
    fig.update_layout(title="Top singular value per layer", height=120 + 24 * len(layers), **LAYOUT)
    return fig


def sv_histograms(layers: list[str], hist: np.ndarray, edges: np.ndarray) -> go.Figure:
    """Heat map: conv layers x log10(singular value) bins, each row normalised to its fraction."""
    frac = hist / np.maximum(hist.sum(1, keepdims=True), 1)
    mid = 0.5 * (edges[:-1] + edges[1:])
    fig = go.Figure(go.Heatmap(z=frac, x=10 ** mid, y=_short(layers), colorscale="Viridis",
                               colorbar={"title": "fraction"},
                               hovertemplate="sigma=%{x:.3g}<br>%{y}<br>fraction %{z:.3f}<extra></extra>"))
    fig.update_xaxes(type="log", title="singular value (FFT method, all frequencies)")
    fig.update_layout(title="Distribution of every conv operator's singular values",
                      height=160 + 26 * len(layers), **LAYOUT)
    return fig


def sv_maps(maps: list[tuple[str, np.ndarray]], title: str) -> go.Figure:
    """sigma_max per output frequency: heat maps (2-D, zero frequency centred) or curves (1-D)."""
    if maps and maps[0][1].ndim == 1:
        fig = go.Figure()
        for name, m in maps:
            f = np.fft.fftshift(np.fft.fftfreq(m.size))
            fig.add_trace(go.Scatter(x=f, y=np.fft.fftshift(m), name=name, mode="lines"))
        fig.update_xaxes(title="frequency (cycles per output sample)")
        fig.update_yaxes(title="largest singular value")
        fig.update_layout(title=title, height=380, **LAYOUT)
        return fig
    cols = min(3, len(maps))
    rows = -(-len(maps) // cols)
    # layers differ in scale by orders of magnitude: each panel is shown relative to its own maximum (named in
    # its title), so the one colour bar is true for every panel; the hover gives the raw value
    tops = [float(np.max(m)) if m.size and np.max(m) > 0 else 1.0 for _, m in maps]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{n} (max {t:.3g})" for (n, _), t in zip(maps, tops,
                                                                                                        strict=True)],
                        horizontal_spacing=0.06, vertical_spacing=0.12)
    for i, ((_, m), top) in enumerate(zip(maps, tops, strict=True)):
        fu = np.fft.fftshift(np.fft.fftfreq(m.shape[0]))
        fv = np.fft.fftshift(np.fft.fftfreq(m.shape[1]))
        raw = np.fft.fftshift(m)
        fig.add_trace(go.Heatmap(z=raw / top, customdata=raw, x=fv, y=fu, zmin=0, zmax=1, colorscale="Magma",
                                 showscale=i == 0, colorbar={"title": "sigma_max /<br>panel max"},
                                 hovertemplate="v=%{x:.3f} u=%{y:.3f}<br>sigma_max %{customdata:.3g}<extra></extra>"),
                      i // cols + 1, i % cols + 1)
    fig.update_xaxes(title="v (cycles/sample)")
    fig.update_yaxes(title="u", scaleanchor=None)
    fig.update_layout(title=title, height=120 + 300 * rows, **LAYOUT)
    return fig


def band_energy(layers: list[str], energy: np.ndarray) -> go.Figure:
    """Stacked bars: fraction of filter power at low / mid / high radial frequency per conv layer."""
    names = ("low (< 1/6 cycle/sample)", "mid (1/6 .. 1/3)", "high (>= 1/3)")
    fig = go.Figure([go.Bar(name=n, x=_short(layers), y=energy[:, i]) for i, n in enumerate(names)])
    fig.update_layout(title="Filter frequency responses: where each layer's filter power sits", barmode="stack",
                      yaxis={"title": "fraction of power", "range": [0, 1]}, height=400, **LAYOUT)
    return fig


def radial_curves(layers: list[str], radial: np.ndarray, cps: np.ndarray, fs: np.ndarray, kind: str) -> go.Figure:
    """Mean |FFT|^2 of each layer's filters against frequency; in Hz with EEG bands when rates are known."""
    hz = bool(np.all(fs > 0)) and kind != "image2d"
    fig = go.Figure()
    for name, r, f in zip(_short(layers), radial, fs, strict=True):
        x = cps * f if hz else cps
        fig.add_trace(go.Scatter(x=x, y=r / max(r.max(), 1e-300), name=name, mode="lines"))
    if hz:
        top = float(np.max(cps[-1] * fs))
        for i, (band, lo, hi) in enumerate(EEG_BANDS):
            if lo < top:
                fig.add_vrect(x0=lo, x1=min(hi, top), fillcolor=("#dde", "#ede")[i % 2], opacity=0.5, line_width=0,
                              annotation_text=band, annotation_position="top left")
    xlabel = "frequency (Hz; each layer at its own sampling rate)" if hz else (
        "radial frequency (cycles per sample)" if kind == "image2d" else
        "frequency (cycles per sample: the card has no sampling rate)")
    fig.update_xaxes(title=xlabel)
    fig.update_yaxes(title="mean filter power (normalised)")
    fig.update_layout(title="Filter frequency responses per layer", height=420, **LAYOUT)
    return fig


def filter_gallery(name: str, filters: np.ndarray, spectra: np.ndarray, fs: float = 0.0) -> go.Figure:
    """Filters (mean over input channels) beside / above their |FFT| (2-D: zero frequency centred;
    1-D: one row per filter, non-negative frequencies in Hz when ``fs`` is known)."""
    m = filters.shape[0]
    if filters.ndim == 2:  # 1-D taps: heat maps, one row per filter
        nfft = spectra.shape[-1]
        freq = np.fft.fftshift(np.fft.fftfreq(nfft))[nfft // 2:] * (fs or 1.0)
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                            subplot_titles=("taps", "|FFT| (Hz)" if fs else "|FFT| (cycles/sample)"))
        fig.add_trace(go.Heatmap(z=filters, colorscale="RdBu_r", zmid=0,  # its own scale: signed, 0 at the centre
                                 colorbar={"title": "tap", "x": 0.45, "thickness": 10},
                                 hovertemplate="filter %{y} tap %{x}: %{z:.3g}<extra></extra>"), 1, 1)
        fig.add_trace(go.Heatmap(z=spectra[:, nfft // 2:], x=freq, colorscale="Viridis", colorbar={"title": "|FFT|"},
                                 hovertemplate="filter %{y} f=%{x:.3g}: %{z:.3g}<extra></extra>"), 1, 2)
        fig.update_yaxes(title="filter", autorange="reversed")
        fig.update_xaxes(title="tap", row=1, col=1)
        fig.update_xaxes(title="frequency (Hz)" if fs else "frequency (cycles/sample)", row=1, col=2)
        fig.update_layout(title=f"Filters of {name} (mean over input channels) and their spectra",
                          height=160 + 18 * m, **LAYOUT)
        return fig
    fig = make_subplots(rows=2, cols=m, horizontal_spacing=0.005, vertical_spacing=0.05,
                        row_titles=["filter", "|FFT|"])
    # one scale per row, each panel relative to its own maximum (hover: raw values): signed filters on a
    # diverging scale with zero at the centre, spectra on a sequential one
    for i in range(m):
        w = float(np.abs(filters[i]).max()) or 1.0
        a = float(np.abs(spectra[i]).max()) or 1.0
        fig.add_trace(go.Heatmap(z=filters[i] / w, customdata=filters[i], coloraxis="coloraxis",
                                 hovertemplate="%{customdata:.3g}<extra></extra>"), 1, i + 1)
        fig.add_trace(go.Heatmap(z=spectra[i] / a, customdata=spectra[i], coloraxis="coloraxis2",
                                 hovertemplate="%{customdata:.3g}<extra></extra>"), 2, i + 1)
    bar = {"thickness": 10, "len": 0.45, "x": 1.05}
    fig.update_layout(coloraxis={"colorscale": "RdBu_r", "cmin": -1, "cmid": 0, "cmax": 1,
                                 "colorbar": {**bar, "y": 0.77, "title": "w / max|w|"}},
                      coloraxis2={"colorscale": "Viridis", "cmin": 0, "cmax": 1,
                                  "colorbar": {**bar, "y": 0.23, "title": "|FFT| / max"}})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(title=f"Filters of {name} (mean over input channels) and their spectra", height=340,
                      **LAYOUT)
    return fig


def alpha_bars(layers: list[str], alpha: np.ndarray, flags: np.ndarray, rand: np.ndarray,
               flag_names: list[str]) -> go.Figure:
    """Power-law alpha per layer coloured by its flag, the 2..6 band shaded, the shuffled control as markers."""
    x = _short(layers)
    shown = np.where(np.isin(flags, (3, 4)), 0.0, alpha)  # 5 = fitted but unreliable: shown, pale
    fig = go.Figure(go.Bar(x=x, y=shown, marker_color=[FLAG_COLORS[f] for f in flags], name="alpha",
                           text=[flag_names[f] for f in flags], hovertemplate="%{x}: alpha %{y:.2f} (%{text})"
                                                                            "<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=np.where(rand > 0, rand, np.nan), mode="markers", name="shuffled weights",
                             marker={"symbol": "x", "size": 10, "color": "black"}))
    fig.add_hrect(y0=ALPHA_LOW, y1=ALPHA_HIGH, fillcolor="green", opacity=0.08, line_width=0,
                  annotation_text="2 < alpha < 6", annotation_position="top left")
    fig.update_layout(title="Heavy-tail exponent alpha per layer (alpha < 2: over-trained?, > 6: under-trained)",
                      yaxis={"title": "alpha"}, height=420, **LAYOUT)
    return fig


def esd_panel(fig, row: int, col: int, evals: np.ndarray, rand: np.ndarray, fit: dict, nm: tuple,
              show_legend: bool) -> None:
    """Log-log ESD density with the power-law fit from lambda_min, the MP density and the shuffled control."""
    pos = evals[evals > 1e-12]
    if pos.size < 2:
        return
    bins = int(np.clip(2 * np.sqrt(pos.size), 6, 40))  # few eigenvalues: few bins, no empty comb
    edges = np.logspace(np.log10(pos.min()), np.log10(pos.max()) + 1e-9, bins)
    for data, name, color in ((pos, "ESD", "#1f77b4"), (rand[rand > 1e-12], "shuffled W", "#aaaaaa")):
        dens = np.histogram(data, edges)[0] / (data.size * np.diff(edges))
        mid = np.sqrt(edges[:-1] * edges[1:])
        keep = dens > 0
        fig.add_trace(go.Scatter(x=mid[keep], y=dens[keep], mode="markers+lines", name=name, legendgroup=name,
                                 showlegend=show_legend, line={"color": color, "width": 1}), row, col)
    lam = np.logspace(np.log10(pos.min()), np.log10(pos.max()), 200)
    n_, m_ = nm
    mp = marchenko_pastur(lam, float(pos.mean()), max(n_ / max(m_, 1), 1.0))
    fig.add_trace(go.Scatter(x=lam[mp > 0], y=mp[mp > 0], mode="lines", name="Marchenko-Pastur", legendgroup="mp",
                             showlegend=show_legend, line={"color": "#9467bd", "dash": "dot"}), row, col)
    if fit["ok"]:
        xs = lam[lam >= fit["xmin"]]
        a, xm = fit["alpha"], fit["xmin"]
        y = fit["n_tail"] / pos.size * (a - 1) / xm * (xs / xm) ** (-a)
        fig.add_trace(go.Scatter(x=xs, y=y, mode="lines", name="power-law fit", legendgroup="fit",
                                 showlegend=show_legend, line={"color": "#d62728", "dash": "dash"}), row, col)
        fig.add_vline(x=xm, line_color="#d62728", line_width=1, row=row, col=col)
    fig.update_xaxes(type="log", row=row, col=col)
    fig.update_yaxes(type="log", row=row, col=col)


def esd_grid(items: list[tuple[str, np.ndarray, np.ndarray, dict, tuple]]) -> go.Figure:
    """One log-log ESD panel per layer: (title, evals, shuffled evals, fit, (N, M))."""
    cols = min(3, len(items))
    rows = -(-len(items) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for t, *_ in items], horizontal_spacing=0.07,
                        vertical_spacing=0.14)
    for i, (_, ev, rd, fit, nm) in enumerate(items):
        esd_panel(fig, i // cols + 1, i % cols + 1, ev, rd, fit, nm, i == 0)
    fig.update_layout(title="ESD of W^T W (log-log density) with the power-law fit from lambda_min (red line)",
                      height=140 + 300 * rows, **LAYOUT)
    return fig


def ntk_spectrum(eigs: dict[str, np.ndarray], n: int, slopes: dict[str, float], title: str = "") -> go.Figure:
    """Rank-ordered NTK eigenvalues (Gram eigenvalue / n = operator estimate) on log-log axes."""
    fig = go.Figure()
    for name, e in eigs.items():
        e = e[e > 0] / n
        label = f"{name} (slope {slopes[name]:.2f})" if name in slopes else name
        fig.add_trace(go.Scatter(x=np.arange(1, e.size + 1), y=e, mode="lines+markers", name=label,
                                 marker={"size": 4}))
    fig.update_xaxes(type="log", title="rank k")
    fig.update_yaxes(type="log", title="lambda_k / n")
    fig.update_layout(title=f"{title or 'Empirical NTK spectrum'} on n={n} inputs (compare models at the same n)",
                      height=420, **LAYOUT)
    return fig


def cumulative_trace(curves: dict[str, np.ndarray]) -> go.Figure:
    fig = go.Figure([go.Scatter(x=np.arange(1, c.size + 1), y=c, mode="lines", name=name)
                     for name, c in curves.items()])
    fig.update_xaxes(type="log", title="rank k")
    fig.update_yaxes(title="fraction of the trace in the top k", range=[0, 1.02])
    fig.update_layout(title="Cumulative NTK trace", height=380, **LAYOUT)
    return fig


def learning_curves(ns: np.ndarray, dims: np.ndarray, local: np.ndarray, glob: np.ndarray, mlp: tuple,
                    slopes: tuple) -> go.Figure:
    """Kernel-regression test error against n per depth: local target solid, global dashed, MLP control dotted."""
    fig = go.Figure()
    for i, d in enumerate(dims):
        color = PALETTE[i % len(PALETTE)]  # one colour per depth: solid local, dashed global
        fig.add_trace(go.Scatter(x=ns, y=local[i], mode="lines+markers", name=f"local, d={d} "
                                 f"(slope {slopes[0][i]:.2f})", line={"dash": "solid", "color": color}))
        fig.add_trace(go.Scatter(x=ns, y=glob[i], mode="lines+markers", name=f"global, d={d} "
                                 f"(slope {slopes[1][i]:.2f})", line={"dash": "dash", "color": color}))
    fig.add_trace(go.Scatter(x=ns, y=mlp[0], mode="lines", name=f"MLP control, local, d={dims[-1]}",
                             line={"dash": "dot", "color": "black"}))
    fig.add_trace(go.Scatter(x=ns, y=mlp[1], mode="lines", name=f"MLP control, global, d={dims[-1]}",
                             line={"dash": "dashdot", "color": "grey"}))
    fig.update_xaxes(type="log", title="training set size n")
    fig.update_yaxes(type="log", title="test error / target variance")
    fig.update_layout(title="Learning curves with the empirical NTK of a hierarchical CNN (filter = stride)",
                      height=460, **LAYOUT)
    return fig


def slopes_vs_dim(dims: np.ndarray, local: np.ndarray, glob: np.ndarray, mlp: tuple) -> go.Figure:
    fig = go.Figure([go.Scatter(x=dims, y=local, mode="lines+markers", name="local target (one patch)"),
                     go.Scatter(x=dims, y=glob, mode="lines+markers", name="global target"),
                     go.Scatter(x=[dims[-1]] * 2, y=list(mlp), mode="markers", name="MLP control (local, global)",
                                marker={"symbol": "x", "size": 11, "color": "black"})])
    fig.update_xaxes(type="log", title="input dimension d = s^L", tickvals=list(dims))
    fig.update_yaxes(title="learning-curve slope (log error vs log n)")
    fig.update_layout(title="Slopes: the local target's barely moves with d, the global one's flattens",
                      height=400, **LAYOUT)
    return fig
