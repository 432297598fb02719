"""The LinearScope result: vote maps, the bias waterfall, rows / columns, the bias image and the
singular-vector gallery, all drawn from stored arrays (no torch, no recomputation).

Arrays (float64 unless said): ``input_display`` (H, W, 3) float32; ``x0`` (C, H, W); ``bias`` c(x0)
and ``linear_part`` A x0 (the output's shape); ``bias_share`` (out);
classifier: ``top`` (k,) int, ``logits`` (classes,), ``rows`` (k, C, H, W), ``votes`` (k, H, W),
``foreground`` (H, W), ``bias_by_layer`` (K, k) the per-group bias terms of the top classes;
image-to-image: ``bias_by_layer`` (K, *out) the per-group bias images, ``output`` (C', H', W'),
``rows`` (R, C, H, W) with ``row_pixels`` (R, 2) int, ``columns`` (Q, C', H', W') with ``column_pixels`` (Q, 2) int,
``row_offset`` (R,); SVD: ``singular_values`` (k,), ``sv_in`` (k, C, H, W), ``sv_out`` (k, *out),
``sv_localization`` (k, 4) and ``random_localization`` (n, 4).
A data set (every sample, see analyzers/linear_scope/dataset.py): ``set_replay_rel_error``,
``set_vote_identity_error``, ``set_bias_share`` (n,), ``set_top1`` (n,) int (-1 for image-to-image) and
``set_votes_top1`` (n, H, W) the predicted class's vote map summed over channels.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analyzers._shared.quality_figure import quality_figures
from workbench.core.plots import DIVERGING, bars, overlay_grid, robust_scale
from workbench.core.result import Result

MAX_WATERFALL = 14
GALLERY = 16
MEASURE_LABELS = ("spatial support (fraction of pixels)", "spectral support (fraction of frequencies)",
                  "orientation coherence", "scale spread (CV of spectral radius)")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _chan(a: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W): the sum over channels (a gray picture of a multi-channel map)."""
    return a.sum(0) if a.ndim == 3 else a


def heat(z: np.ndarray, *, signed: bool, name: str = "", origin: tuple[int, int] = (0, 0)) -> go.Heatmap:
    """A heat map trace of an (H, W) map whose top-left pixel is ``origin`` (row, col) of the full image;
    signed maps are robust-scaled to [-1, 1] on a diverging scale, unsigned ones shown in gray on [0, 1]."""
    xs, ys = np.arange(z.shape[1]) + origin[1], np.arange(z.shape[0]) + origin[0]
    hover = "row %{y}, col %{x}<br>%{z:.4g}<extra></extra>"
    if signed:
        return go.Heatmap(z=robust_scale(z), x=xs, y=ys, zmid=0, zmin=-1, zmax=1, colorscale=DIVERGING,
                          showscale=False, name=_e(name), hovertemplate=hover)
    return go.Heatmap(z=z, x=xs, y=ys, colorscale="gray", showscale=False, name=_e(name), zmin=0, zmax=1,
                      hovertemplate=hover)


def panel(tiles: list[tuple], title: str, cols: int = 4, size: int = 230) -> go.Figure:
    """A grid of square heat maps [(title, (H, W), signed[, origin (row, col)])], image rows pointing down."""
    rows = -(-len(tiles) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[_e(t[0]) for t in tiles],
                        horizontal_spacing=0.02, vertical_spacing=0.08 / max(rows, 1))
    for i, (name, z, signed, *origin) in enumerate(tiles):
        fig.add_trace(heat(z, signed=signed, name=name, origin=origin[0] if origin else (0, 0)),
                      i // cols + 1, i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    for i in range(1, rows * cols + 1):
        fig.update_yaxes(scaleanchor=f"x{i if i > 1 else ''}", row=(i - 1) // cols + 1, col=(i - 1) % cols + 1)
    fig.update_layout(title=_e(title), height=80 + size * rows, margin={"l": 10, "r": 10, "t": 80, "b": 10})
    return fig


class LinearScopeResult(Result):
    """Figures for both modes; see the module docstring for the arrays."""

    @property
    def classifier(self) -> bool:
        return self.info.get("mode") == "classifier"

    def _layer_terms(self, column: np.ndarray) -> tuple[list[str], list[float]]:
        """(names, values) of the per-layer bias terms, the largest kept and the rest lumped together."""
        names = list(self.info.get("bias_names", []))
        order = np.argsort(-np.abs(column))
        keep = sorted(order[:MAX_WATERFALL])
        labels, values = [names[i] if i < len(names) else str(i) for i in keep], [float(column[i]) for i in keep]
        rest = [i for i in order[MAX_WATERFALL:]]
        if rest:
            labels.append(f"{len(rest)} other bias groups")
            values.append(float(column[rest].sum()))
        return labels, values

    def waterfall(self, start_label: str, start: float, column: np.ndarray, total_label: str,
                  title: str) -> go.Figure:
        labels, values = self._layer_terms(column)
        fig = go.Figure(go.Waterfall(
            x=[_e(start_label), *(_e(v) for v in labels), _e(total_label)], y=[start, *values, 0.0],
            measure=["absolute", *["relative"] * len(values), "total"],
            text=[f"{v:.3g}" for v in (start, *values, start + sum(values))], textposition="outside"))
        fig.update_layout(title=_e(title), height=460, showlegend=False, margin={"l": 10, "r": 10, "t": 60, "b": 10})
        fig.update_xaxes(tickangle=-35, automargin=True)
        return fig

    def figures(self) -> list:
        if "x0" not in self.arrays:
            return []
        figs = self._classifier_figures() if self.classifier else self._image2image_figures()
        figs += self._svd_figures()
        if len(self.arrays.get("set_bias_share", ())) > 1:
            figs += self._set_figures()
        return figs + quality_figures(self.arrays, self.info, {"votes": "vote map"})

    def _set_figures(self) -> list:
        """Over the data set: the bias share per predicted class, and the mean vote map of each class."""
        a, names = self.arrays, self.info.get("all_class_names", [])
        top, share = a["set_top1"], a["set_bias_share"]

        def label(k: int) -> str:
            return names[k] if 0 <= k < len(names) else str(k)

        fig = go.Figure([go.Box(y=share[top == k], name=_e(label(int(k))), boxpoints="all", jitter=0.4,
                                pointpos=0, marker={"size": 4}) for k in np.unique(top)])
        fig.update_layout(title=f"Bias share of the predicted class over {len(share)} samples (0 = all votes, "
                                "1 = all bias)", yaxis_title="bias share", showlegend=False, height=360,
                          margin={"l": 10, "r": 10, "t": 60, "b": 10})
        figs = [fig]
        classes = [int(k) for k in np.unique(top) if k >= 0][:10]
        if classes:
            means = [a["set_votes_top1"][top == k].mean(0) for k in classes]
            tiles = [(f"{label(k)} (n={int((top == k).sum())})", m, True) for k, m in zip(classes, means, strict=True)]
            figs.append(panel(tiles, "Mean vote map of each predicted class over the data set", cols=5, size=170))
        return figs

    # -- classifier ---------------------------------------------------------------------------------
    def _classifier_figures(self) -> list:
        a, names = self.arrays, self.info.get("class_names", [])
        top, logits = a["top"], a["logits"]
        labels = [f"{names[i] if i < len(names) else int(t)} (logit {logits[int(t)]:.2f})" for i, t in enumerate(top)]
        img = a["input_display"][None]
        ident = self.info.get("ids", ["input"])[0]
        figs = [overlay_grid(img, [(f"votes: {lab}", a["votes"][i][None], True) for i, lab in enumerate(labels)],
                             [ident], "Vote maps V_c = A_c * x0 summed over channels (sum of votes + bias = logit)"),
                overlay_grid(img, [(f"template A_c: {lab}", a["rows"][i].sum(0)[None], True)
                                   for i, lab in enumerate(labels)], [ident],
                             "Rows of A (what each class score looks at, before multiplying by the input)")]
        t0 = int(top[0])
        votes_sum = float(a["votes"][0].sum())
        figs.append(self.waterfall("sum of votes", votes_sum, a["bias_by_layer"][:, 0], "logit",
                                   f"Logit of '{names[0] if names else t0}' = votes + per-layer bias terms"))
        b = a["bias"].reshape(-1)
        fig = go.Figure([go.Bar(name="sum of votes", x=[_e(x) for x in labels], y=[float(v.sum()) for v in a["votes"]]),
                         go.Bar(name="bias c(x0)", x=[_e(x) for x in labels], y=[float(b[int(t)]) for t in top])])
        fig.update_layout(barmode="relative", title="Each logit split into votes and bias", height=380,
                          margin={"l": 10, "r": 10, "t": 60, "b": 10})
        figs.append(fig)
        figs.append(bars([f"{lab}" for lab in labels], [float(a["bias_share"][int(t)]) for t in top],
                         "Bias share |c| / (|sum of votes| + |c|) per class", xlabel="bias share"))
        return figs

    # -- image to image -----------------------------------------------------------------------------
    def _image2image_figures(self) -> list:
        a = self.arrays
        tiles = [("input x0", _chan(a["x0"]) / max(1, a["x0"].shape[0]), False),
                 ("output f(x0)", _chan(a["output"]) / max(1, a["output"].shape[0]), False),
                 ("linear part A x0", _chan(a["linear_part"]) / max(1, a["output"].shape[0]), False),
                 ("bias image c(x0)", _chan(a["bias"]), True)]
        figs = [panel(tiles, "Output = A(x0) x0 + c(x0): the bias image is what the network adds on its own")]
        figs += [self.rows_figure(), self.columns_figure()]
        layer_means = a["bias_by_layer"].reshape(len(a["bias_by_layer"]), -1).mean(1) \
            if len(a["bias_by_layer"]) else np.zeros(0)
        figs.append(self.waterfall("mean of A x0", float(a["linear_part"].mean()), layer_means, "mean output",
                                   "Mean output pixel = mean linear part + per-layer bias terms"))
        return figs

    def _zoomed(self, maps: np.ndarray, pixels: np.ndarray, src_hw: tuple, dst_hw: tuple, label: str,
                title: str) -> go.Figure:
        """Each map (dst space) in full and zoomed around the chosen pixel (src space) mapped into dst."""
        tiles, marks = [], []
        half = max(6, int(round(0.12 * dst_hw[0])))
        for i, (r, c) in enumerate(pixels):
            y, x = (r + 0.5) * dst_hw[0] / src_hw[0] - 0.5, (c + 0.5) * dst_hw[1] / src_hw[1] - 0.5
            z = _chan(maps[i])
            y0, x0 = int(np.clip(round(y) - half, 0, max(0, dst_hw[0] - 2 * half))), \
                int(np.clip(round(x) - half, 0, max(0, dst_hw[1] - 2 * half)))
            tiles += [(f"{label} ({r}, {c})", z, True), (f"zoom around ({y:.0f}, {x:.0f})",
                                                         z[y0:y0 + 2 * half, x0:x0 + 2 * half], True, (y0, x0))]
            marks += [(y, x), (y, x)]
        fig = panel(tiles, title, cols=4)
        for i, (y, x) in enumerate(marks):
            fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", marker={"symbol": "x", "color": "lime"},
                                     showlegend=False, hoverinfo="skip"), i // 4 + 1, i % 4 + 1)
        return fig

    def rows_figure(self) -> go.Figure:
        """Each chosen output pixel's row A^T e_j as an input-space image, with its location marked."""
        a = self.arrays
        off = ", ".join(f"{v:.1f}" for v in a["row_offset"])
        return self._zoomed(a["rows"], a["row_pixels"], a["output"].shape[-2:], a["x0"].shape[-2:], "row of output",
                            f"Rows A^T e_j: what each output pixel looks at (input space); centroid offset {off} px")

    def columns_figure(self) -> go.Figure:
        """Each chosen input pixel's column A e_i (impulse response) as an output-space image."""
        a = self.arrays
        return self._zoomed(a["columns"], a["column_pixels"], a["x0"].shape[-2:], a["output"].shape[-2:],
                            "column of input", "Columns A e_i: where each input pixel spreads to (output space)")

    def pixel_picker(self, which: str) -> go.Figure:
        """One clickable gray image: ``which`` = "output" (pick a row) or "input" (pick a column).

        Plotly heat maps emit no point selections, so an invisible marker sits on every pixel (every
        ``step``-th past 128 a side): a click selects the nearest marker, whose x, y are the column, row."""
        arr = self.arrays["output" if which == "output" else "x0"]
        z = _chan(arr) / max(1, arr.shape[0])
        step = max(1, -(-max(z.shape) // 128))
        yy, xx = np.mgrid[0:z.shape[0]:step, 0:z.shape[1]:step]
        fig = go.Figure([heat(z, signed=False, name=which),
                         go.Scatter(x=xx.ravel(), y=yy.ravel(), mode="markers", marker={"opacity": 0, "size": 6},
                                    hovertemplate="row %{y}, col %{x}<extra></extra>", showlegend=False)])
        fig.data[0].hoverinfo = "skip"
        fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
        fig.update_xaxes(visible=False)
        fig.update_layout(title=f"click a pixel of the {which}", height=360, margin={"l": 0, "r": 0, "t": 40, "b": 0})
        return fig

    # -- singular vectors ---------------------------------------------------------------------------
    def _svd_figures(self) -> list:
        a = self.arrays
        if "singular_values" not in a:
            return []
        s = a["singular_values"]
        fig = go.Figure(go.Scatter(x=np.arange(1, len(s) + 1), y=s, mode="lines+markers"))
        fig.update_layout(title="Top singular values of A(x0) (ARPACK, matrix-free)", height=320,
                          xaxis_title="index", yaxis_title="singular value",
                          margin={"l": 10, "r": 10, "t": 60, "b": 40})
        n = min(GALLERY, len(s))
        tiles = [(f"v{i + 1} (sigma {s[i]:.3g})", _chan(a["sv_in"][i]), True) for i in range(n)]
        figs = [fig, panel(tiles, "Gallery of the top right singular vectors (input-space basis)", cols=4, size=200)]
        if "sv_localization" in a:
            top, rand = a["sv_localization"], a["random_localization"]
            vals_top = [*top[:, :3].mean(0), top[:, 3].std() / max(top[:, 3].mean(), 1e-12)]
            vals_rand = [*rand[:, :3].mean(0), rand[:, 3].std() / max(rand[:, 3].mean(), 1e-12)]
            loc = go.Figure([go.Bar(name="top singular vectors", y=list(MEASURE_LABELS), x=vals_top, orientation="h"),
                             go.Bar(name="random vectors", y=list(MEASURE_LABELS), x=vals_rand, orientation="h")])
            loc.update_layout(title="Wavelet-likeness: localized in space and frequency, oriented, multi-scale",
                              barmode="group", height=380, margin={"l": 10, "r": 10, "t": 60, "b": 40})
            loc.update_yaxes(autorange="reversed", automargin=True)
            figs.append(loc)
        return figs

    def summary(self) -> str:
        m, i = self.metrics, self.info
        parts = [f"Replayed the network frozen at {i.get('ids', ['x0'])[0]} as y = A x + c "
                 f"({m.get('frozen_units', 0):.0f} frozen units, {m.get('bias_groups', 0):.0f} bias groups, "
                 f"gate '{i.get('gate')}', {i.get('dtype')}): "
                 f"replay error {m.get('replay_rel_error', float('nan')):.2e}, "
                 f"adjoint error {m.get('adjoint_rel_error', float('nan')):.2e}."]
        if not i.get("frozen", True):
            parts.append("CONTROL: units were NOT frozen, so the replay is not affine and the checks must fail.")
        if self.classifier:
            names = i.get("class_names", ["?"])
            parts.append(f"Top class '{names[0]}': logit {m.get('logit_top1', 0):.3f} = votes "
                         f"{m.get('votes_top1', 0):.3f} + bias {m.get('bias_top1', 0):.3f}; bias share "
                         f"{m.get('bias_share_top1', 0):.2f}. {100 * m.get('vote_object_share', 0):.0f}% of the "
                         f"|votes| fall on the foreground, which covers {100 * m.get('object_area_fraction', 0):.0f}% "
                         "of the image.")
        else:
            parts.append(f"Bias share {m.get('bias_share_mean', 0):.2f} on average "
                         f"({m.get('bias_share_top1', 0):.2f} at the brightest output pixel).")
        if "top_singular_value" in m:
            parts.append(f"Top singular value {m['top_singular_value']:.4g} (residual {m.get('svd_residual', 0):.1e}).")
        if "sv_spatial_support" in m:
            parts.append(f"Top singular vectors occupy {m['sv_spatial_support']:.3f} of the pixels and "
                         f"{m['sv_spectral_support']:.3f} of the frequencies (random vectors: "
                         f"{m['random_spatial_support']:.3f} / {m['random_spectral_support']:.3f}); orientation "
                         f"coherence {m['sv_orientation_coherence']:.2f} vs {m['random_orientation_coherence']:.2f}.")
        if "set_bias_share_mean" in m:
            parts.append(f"Over {m.get('n_samples', 0):.0f} samples: bias share {m['set_bias_share_mean']:.2f} "
                         f"± {m.get('set_bias_share_sd', 0):.2f}; worst replay error "
                         f"{float(np.max(self.arrays.get('set_replay_rel_error', [np.nan]))):.1e}. The detailed "
                         "views show the first sample.")
        if not i.get("trained", True):
            parts.append("The model is untrained (seeded random weights).")
        return " ".join(parts)
