"""The quality panel's figures, drawn from stored arrays only (no torch): mean deletion and insertion curves
of every map beside the random map's, with the AUCs in the legend; the ROAD MoRF / LeRF curves when stored; eMPRT's
entropy rise and the random-logit SSIM per sample, with their thresholds, when the panel computed them."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from workbench.core.plots import esc

PANELS = ((("deletion", "Deletion (lower AUC is better)"), ("insertion", "Insertion (higher AUC is better)")),
          (("road_morf", "ROAD, most relevant first (lower AUC is better)"),
           ("road_lerf", "ROAD, least relevant first (higher AUC is better)")))
TITLES = ("Faithfulness: deletion and insertion curves (removed pixels / samples set to the baseline)",
          "Faithfulness: ROAD curves (removed pixels imputed from their neighbours, plus noise)")


def _figure(arrays: dict, info: dict, labels: dict, kinds: tuple, title: str) -> go.Figure:
    frac = np.asarray(arrays["quality_fractions"])
    fig = make_subplots(rows=1, cols=2, subplot_titles=[t for _, t in kinds])
    names = [*info.get("quality_maps", []), "random"]
    palette = qualitative.Plotly
    for k, name in enumerate(names):  # one colour per map in both panels; the legend names the panel and the AUC
        label = esc(labels.get(name, "random map" if name == "random" else name))
        style = {"dash": "dash", "color": "gray"} if name == "random" else {"color": palette[k % len(palette)]}
        for col, (kind, _) in enumerate(kinds, start=1):
            if f"quality_{kind}_{name}" not in arrays:
                continue
            curve = np.asarray(arrays[f"quality_{kind}_{name}"]).mean(0)
            auc = float(np.mean(arrays[f"quality_{kind}_auc_{name}"]))
            panel = kind.replace("road_", "").replace("_", " ")
            fig.add_trace(go.Scatter(x=frac, y=curve, mode="lines", name=f"{label}, {panel} AUC {auc:.3f}",
                                     line=style, legendgroup=str(k)), row=1, col=col)
    n = np.asarray(arrays[f"quality_{kinds[0][0]}_random"]).shape[0]
    fig.update_xaxes(title_text="fraction of pixels / features removed or inserted", range=[0, 1])
    fig.update_yaxes(title_text="probability of the explained class", row=1, col=1)
    fig.update_layout(title=f"{title}, mean over {n} sample(s), step {info.get('quality_step', 0):g}", height=420)
    return fig


RANDOMIZATION = (("emprt", "eMPRT: relative entropy rise, fully randomized model (above the line passes)",
                  "quality_emprt_min_rise"),
                 ("logit_ssim", "Random logit: SSIM to another class's map (below the line passes)",
                  "quality_logit_ssim_max"))


def _randomization_figure(arrays: dict, info: dict, labels: dict) -> go.Figure | None:
    """Per-sample eMPRT rise and random-logit SSIM of every map that has them, one box per map."""
    names = [n for n in info.get("quality_maps", [])
             if any(f"quality_{kind}_{n}" in arrays for kind, _, _ in RANDOMIZATION)]
    if not names:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=[t for _, t, _ in RANDOMIZATION])
    for col, (kind, _, limit) in enumerate(RANDOMIZATION, start=1):
        for name in names:
            values = np.asarray(arrays.get(f"quality_{kind}_{name}", []), np.float64)
            if kind == "emprt" and f"quality_emprt_defined_{name}" in arrays:
                values = values[np.asarray(arrays[f"quality_emprt_defined_{name}"], bool)]
            if values.size:
                fig.add_trace(go.Box(y=values, name=esc(labels.get(name, name)), boxpoints="all", jitter=0.4,
                                     pointpos=0, marker={"size": 4}, showlegend=False), row=1, col=col)
        if limit in info:
            fig.add_hline(y=float(info[limit]), line_dash="dash", line_color="gray", row=1, col=col)
    fig.update_yaxes(title_text="relative rise of the entropy", row=1, col=1)
    fig.update_yaxes(title_text="SSIM (1 = the same map)", row=1, col=2)
    fig.update_layout(title="Randomization: does the map depend on the learned weights (eMPRT) and on the class "
                            "(random logit)?", height=420)
    return fig


def quality_figures(arrays: dict, info: dict, labels: dict | None = None) -> list[go.Figure]:
    """[] when the result has no quality panel. ``labels``: map name -> legend label."""
    if "quality_fractions" not in arrays:
        return []
    figs = [_figure(arrays, info, labels or {}, kinds, title) for kinds, title in zip(PANELS, TITLES, strict=True)
            if f"quality_{kinds[0][0]}_random" in arrays]
    extra = _randomization_figure(arrays, info, labels or {})
    return figs + ([extra] if extra is not None else [])
