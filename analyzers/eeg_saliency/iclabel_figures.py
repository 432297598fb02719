"""Figures and the summary of an eeg_saliency result on ICLabel's feature sheets (iclabel_run.py), from stored arrays
only (no torch): the prediction table beside mne-icalabel's labels, the shown component's head maps, spectrum and
autocorrelation relevance, and over the set the part shares, spectrum x Hz and lag x ms maps and the mean head map.

Head maps: ICLabel's own 32 x 32 EEGLAB grid (what the network reads), drawn nose up with the left hemisphere on
the left: grid row = front-back (row 31 at the nose), column = left-right (column 31 at the right ear); the head
circle has radius 0.5 (EEGLAB's topoplot), pixels outside it are blank.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plots import SIGNED_TICKS, column_colorbar

LABELS = {"lrp": "LRP (EpsilonPlusFlat, zennit)", "ig": "Integrated Gradients (captum)"}
SHORT = {"lrp": "LRP", "ig": "IG"}
NO_TRUTH = ("There is no ground truth for a real recording's components: nobody knows which feature ICLabel should "
            "have used. What is checked instead: LRP conservation, IG completeness, the model-randomization control "
            "and (option quality) deletion/insertion against a random map.")


def _head(fig: go.Figure, row: int, col: int) -> None:
    """EEGLAB's head (radius 0.5), nose and ears, in the (left-right, back-front) plane."""
    t = np.linspace(0, 2 * np.pi, 121)
    parts = [(0.5 * np.cos(t), 0.5 * np.sin(t)), ([-0.08, 0, 0.08], [0.495, 0.58, 0.495]),
             (-0.5 - 0.04 * np.sin(t[:61]), 0.1 * np.cos(t[:61])), (0.5 + 0.04 * np.sin(t[:61]), 0.1 * np.cos(t[:61]))]
    for x, y in parts:
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", line={"color": "black", "width": 1.5},
                                 showlegend=False, hoverinfo="skip"), row, col)


def _headmap(fig: go.Figure, a: dict, grid: np.ndarray, row: int, col: int, signed: bool, bar: dict | None) -> None:
    g = np.where(a["iclabel_head"], np.asarray(grid, np.float64), np.nan)
    peak = max(float(np.nanmax(np.abs(g))) if np.isfinite(g).any() else 0.0, 1e-30)
    ax = a["iclabel_grid"]
    # z[row] is the front-back axis (y, nose up), columns the left-right axis (x): the grid needs no transpose
    fig.add_trace(go.Heatmap(z=g / peak, x=ax, y=ax, zmin=-1 if signed else 0, zmax=1, hoverongaps=False,
                             colorscale="RdBu_r" if signed else "Viridis", showscale=bar is not None,
                             colorbar=bar or {}), row, col)
    _head(fig, row, col)


def _square(fig: go.Figure, n: int) -> None:
    """Hide the axes and keep every head round: each panel's y axis scaled to its own x axis."""
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for j in range(1, n + 1):
        fig.layout["yaxis" if j == 1 else f"yaxis{j}"].scaleanchor = "x" if j == 1 else f"x{j}"


def _names(r) -> list[str]:
    ids, lab = r.info.get("ids", []), r.info.get("iclabel_labels", [])
    return [f"{i.rsplit(':', 1)[-1]}: {lab[k] if k < len(lab) else '?'}" for k, i in enumerate(ids)]


def prediction_table(r) -> go.Figure:
    probs, names = r.arrays["probs"], r.info.get("class_names", [])
    mne = r.info.get("mne_icalabel_labels", [""] * len(probs))
    ours = r.info.get("iclabel_labels", [])
    second = [names[int(np.argsort(p)[-2])] + f" {np.sort(p)[-2]:.2f}" for p in probs]
    cols = {"component": r.info.get("ids", []), "ICLabel here": ours,
            "P": [f"{p.max():.2f}" for p in probs], "next": second,
            "mne-icalabel": [m or "-" for m in mne], "same": ["yes" if m == o else ("-" if not m else "NO")
                                                             for m, o in zip(mne, ours, strict=False)]}
    # fixed row heights, so the figure height below fits every row (plotly.js scrolls a table that overflows)
    fig = go.Figure(go.Table(header={"values": list(cols), "height": 28},
                             cells={"values": list(cols.values()), "height": 24}))
    agree = r.metrics.get("agreement_with_mne_icalabel")
    fig.update_layout(title="ICLabel's prediction per ICA component (mean logit of its 4 views, softmax) beside "
                            "mne-icalabel's own label" + (f": {agree:.0%} agree" if agree is not None else ""),
                      height=110 + 28 + 24 * len(probs), margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig


def component_heads(r, methods: list[str]) -> go.Figure:
    a, k = r.arrays, int(r.info.get("window", 0))
    panels = [("input topomap", a["ic_sheet"][k, :32, :32], True)]
    panels += [(f"{SHORT[m]} relevance", a[f"ic_topo_{m}"][k], True) for m in methods]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.04)
    for j, (_, grid, signed) in enumerate(panels):
        bar = column_colorbar(fig, j + 1, "input, of peak" if j == 0 else "signed, of max |.|", SIGNED_TICKS)
        _headmap(fig, a, grid, 1, j + 1, signed, bar)
    _square(fig, len(panels))
    regions = r.info.get("regions", [])
    shares = "; ".join(f"{SHORT[m]}: " + ", ".join(f"{n} {v:.0%}" for n, v in zip(regions, a[f"ic_regions_{m}"][k],
                                                                                  strict=False)) for m in methods)
    fig.update_layout(title=f"Scalp: where on component {r.info.get('window_id')} ({_names(r)[k]}) the relevance "
                            f"sits, nose up, left on the left<br><sup>positive relevance by region: {shares}</sup>",
                      height=420, margin={"l": 10, "r": 10, "t": 90, "b": 60})
    return fig


def _curve(r, methods: list[str], part: str, axis: np.ndarray, xlabel: str, row: int, title: str) -> go.Figure:
    """The input feature on top, then one panel per method (each its own scale: IG's per-bin values can be many
    times LRP's, with signs that cancel)."""
    a, k = r.arrays, int(r.info.get("window", 0))
    fig = make_subplots(rows=1 + len(methods), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=["input (ICLabel's feature)"] + [f"{LABELS[m]}" for m in methods])
    fig.add_trace(go.Scatter(x=axis, y=a["ic_sheet"][k, row], mode="lines", line={"color": "black"},
                             showlegend=False), 1, 1)
    for j, m in enumerate(methods):
        v = np.asarray(a[f"ic_{part}_{m}"][k], np.float64)
        fig.add_trace(go.Bar(x=axis, y=v, showlegend=False, marker_color=np.where(v >= 0, "#d62728", "#1f77b4")),
                      j + 2, 1)
        fig.update_yaxes(title_text="relevance", row=j + 2, col=1)
    fig.update_xaxes(title_text=xlabel, row=1 + len(methods), col=1)
    fig.update_layout(title=title + "<br><sup>red: evidence for the label, blue: against</sup>",
                      height=200 + 170 * len(methods), margin={"t": 90})
    return fig


def spectrum(r, methods: list[str]) -> go.Figure:
    n_real, k = int(r.info.get("n_real_bins", 100)), int(r.info.get("window", 0))
    top = [f"{int(h)} Hz" for h in r.arrays["iclabel_hz"][np.argsort(-r.arrays[f"ic_psd_{methods[0]}"][k])[:3]]]
    fig = _curve(r, methods, "psd", r.arrays["iclabel_hz"], "frequency (Hz)", 32,
                 f"Spectrum: which frequencies of {r.info.get('window_id')} drove the label (top by "
                 f"{SHORT[methods[0]]}: {', '.join(top)})")
    if n_real < 100:
        fig.add_vrect(x0=n_real + 0.5, x1=100.5, fillcolor="grey", opacity=0.15, line_width=0, row="all", col=1)
        fig.add_annotation(x=(n_real + 100) / 2, y=1.0, yref="paper", showarrow=False, yanchor="bottom",
                           text=f"above Nyquist: copies of {n_real} Hz (mne-icalabel pads)")
    return fig


def autocorr(r, methods: list[str]) -> go.Figure:
    return _curve(r, methods, "ac", r.arrays["iclabel_lag_ms"], "lag (ms)", 33,
                  f"Autocorrelation: which lags of {r.info.get('window_id')} drove the label (100 samples/s, lag 0 "
                  "dropped)")


def parts(r, methods: list[str]) -> go.Figure:
    names = _names(r)
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=[LABELS[m] for m in methods], shared_yaxes=True)
    for j, m in enumerate(methods):
        p, tot = r.arrays[f"ic_parts_{m}"], r.arrays[f"ic_total_{m}"]
        share = p / np.where(np.abs(tot) > 0, tot, 1.0)[:, None]
        for i, part in enumerate(r.info.get("parts", [])):
            fig.add_trace(go.Bar(y=names, x=share[:, i], name=part, orientation="h", showlegend=j == 0,
                                 marker_color=("#4c78a8", "#f58518", "#54a24b")[i]), 1, j + 1)
    fig.update_layout(barmode="relative", height=160 + 24 * len(names), xaxis_title="share of the map's sum",
                      title="Over the set: share of each component's relevance on the topomap, spectrum and "
                            "autocorrelation (parts add up to 1)")
    fig.update_yaxes(autorange="reversed")
    return fig


def set_maps(r, m: str) -> go.Figure:
    a, names = r.arrays, _names(r)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["spectrum (Hz)", "autocorrelation lag (ms)"],
                        shared_yaxes=True, horizontal_spacing=0.04)
    for j, (part, axis) in enumerate((("psd", a["iclabel_hz"]), ("ac", a["iclabel_lag_ms"]))):
        v = np.asarray(a[f"ic_{part}_{m}"], np.float64)
        z = v / np.maximum(np.abs(v).max(1, keepdims=True), 1e-30)
        fig.add_trace(go.Heatmap(z=z, x=axis, y=names, zmin=-1, zmax=1, colorscale="RdBu_r", showscale=j == 1,
                                 colorbar={"title": "of row max"}), 1, j + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=f"Over the set, {LABELS[m]}: relevance per frequency and per lag, each component "
                            "scaled to its own largest |value|", height=160 + 24 * len(names))
    return fig


def mean_heads(r, methods: list[str]) -> go.Figure:
    a = r.arrays
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=[LABELS[m] for m in methods])
    for j, m in enumerate(methods):
        t = np.abs(np.asarray(a[f"ic_topo_{m}"], np.float64))
        mean = (t / np.maximum(t.sum((1, 2), keepdims=True), 1e-30)).mean(0)
        _headmap(fig, a, mean, 1, j + 1, False, {"title": "of peak"} if j == len(methods) - 1 else None)
    _square(fig, len(methods))
    fig.update_layout(title="Over the set: mean share of |topomap relevance| per pixel (each component weighs "
                            "the same), nose up", height=400)
    return fig


def figures(r) -> list:
    from analyzers._shared.quality_figure import quality_figures

    methods = [m for m in r.info.get("methods", []) if f"ic_topo_{m}" in r.arrays]
    if "probs" not in r.arrays or not methods:
        return []
    figs = [prediction_table(r), component_heads(r, methods), spectrum(r, methods), autocorr(r, methods),
            parts(r, methods)] + [set_maps(r, m) for m in methods] + [mean_heads(r, methods)]
    return figs + quality_figures(r.arrays, r.info, {m: LABELS[m] for m in methods})


def summary(r) -> str:
    m, info = r.metrics, r.info
    k, methods = int(info.get("window", 0)), [x for x in info.get("methods", []) if f"ic_topo_{x}" in r.arrays]
    out = [f"{int(m.get('n_windows', 0))} ICA components labelled by ICLabel"
           + (f"; {m['agreement_with_mne_icalabel']:.0%} agree with mne-icalabel" if "agreement_with_mne_icalabel"
              in m else "") + ".", NO_TRUTH]
    if info.get("skipped_methods"):
        out.append(f"Not computed here: {', '.join(info['skipped_methods'])} (Grad-CAM has no spatial map on the "
                   "sheet: the spectrum and autocorrelation branches end in one channel).")
    if "lrp_conservation" in m:
        out.append(f"LRP keeps {m['lrp_conservation_min']:.2f}-{m['lrp_conservation_max']:.2f} of the explained "
                   "output at the input (z+ biases absorb the rest); its Flat first layer puts "
                   f"{m.get('lrp_topomap_outside_head', 0):.0%} of the topomap's |relevance| on the blank pixels "
                   "outside the head (not drawn).")
    if "ig_completeness_gap" in m:
        out.append(f"IG completeness gap: median {m['ig_completeness_gap']:.3f}, largest "
                   f"{m['ig_completeness_gap_max']:.3f}.")
    for x in methods:
        key = f"{'lrp_' if x == 'lrp' else 'ig_'}randomization_rank_corr"
        if key in m:
            out.append(f"{SHORT[x]}: rank correlation with a re-initialized model's map {m[key]:.2f} ("
                       + ("passes" if m[key] < 0.5 else "FAILS: the map follows the input more than the weights")
                       + ", must stay below 0.5).")
    if methods and "ic_psd_" + methods[0] in r.arrays:
        x, a = methods[0], r.arrays
        top = ", ".join(f"{int(h)} Hz" for h in a["iclabel_hz"][np.argsort(-a[f"ic_psd_{x}"][k])[:3]])
        lags = ", ".join(f"{int(v)} ms" for v in a["iclabel_lag_ms"][np.argsort(-a[f"ic_ac_{x}"][k])[:3]])
        parts_ = a[f"ic_parts_{x}"][k] / (a[f"ic_total_{x}"][k] or 1.0)
        out.append(f"Component {info.get('window_id')} ({info.get('iclabel_labels', ['?'] * (k + 1))[k]}), "
                   f"{SHORT[x]}: topomap {parts_[0]:.0%}, spectrum {parts_[1]:.0%}, autocorrelation {parts_[2]:.0%}"
                   f" of the relevance; top frequencies {top}; top lags {lags}; positive spectrum relevance by band: "
                   + ", ".join(f"{b.split()[0]} {v:.0%}" for b, v in zip(info.get("psd_bands", []),
                                                                          a[f"ic_bands_{x}"][k], strict=False)) + ".")
    return " ".join(out)
