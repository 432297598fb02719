"""The receptive-field result: every figure is built from stored arrays (numpy and plotly only).

Arrays (model runs): ``rf_size``, ``rf_jump``, ``rf_start``, ``rf_eff_padding`` (L, S) px per layer and
spatial axis (-1 where not local), ``rf_kind`` (L,) 0 local / 1 global / 2 flattened, ``rf_approx``
(L,); ``trf_box_lo/hi`` (S,) the chosen layer's centre-unit box in input px; ``probe_*`` (S,);
``erf_map`` (*input spatial) mean gradient map, ``erf_ratios``/``erf_sides`` (4,) at t = 20/30/50/99 %,
``erf_curve_sides``/``erf_curve_frac``, ``erf_std``/``erf_width95`` (S,), ``erf_profile_<axis>``,
the same with ``erf_untrained_`` for fresh weights, and ``display`` (H, W, 3) or (C, T).
Growth runs: ``growth_depths`` (D,), ``growth_sigma`` (D, 2), ``growth_trf`` (D,), ``growth_profiles``.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.result import Result

KINDS = {0: "local", 1: "global", 2: "flattened", 3: "none"}
THRESHOLDS = (20, 30, 50, 99)
T_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")
MAX_SIDE = 256  # figures show maps block-averaged to at most this many pixels a side


def _block_mean(m: np.ndarray) -> tuple[np.ndarray, int]:
    """Downsample a 2-D map by an integer factor f so that no side exceeds MAX_SIDE; returns (map, f)."""
    f = max(1, math.ceil(max(m.shape) / MAX_SIDE))
    if f == 1:
        return m, 1
    h, w = (m.shape[0] // f) * f, (m.shape[1] // f) * f
    return m[:h, :w].reshape(h // f, f, w // f, f).mean((1, 3)), f


LEVEL_TICKS = {"tickvals": [0, 64, 128, 191, 255], "ticktext": ["0", "0.25", "0.5", "0.75", "1"]}


def _heatmap(m: np.ndarray, f: int, **kw) -> go.Heatmap:
    """A map in [0, 1] as 256 uint8 levels (an eighth of the JSON of float64), pixel step f."""
    z = np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)
    return go.Heatmap(z=z, x0=(f - 1) / 2, dx=f, y0=(f - 1) / 2, dy=f, zmin=0, zmax=255,
                      hovertemplate="x=%{x} y=%{y}<br>%{z}/255<extra></extra>", **kw)


def _png_uri(img: np.ndarray) -> str:
    """(H, W, 3) floats in [0, 1] -> a PNG data URI (a tenth of the JSON of a pixel array)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _log_norm(m: np.ndarray) -> np.ndarray:
    out = np.log10(np.asarray(m, dtype=np.float64) + 1.0)
    return out / out.max() if out.max() > 0 else out


def _fmt(v: np.ndarray) -> str:
    vals = [f"{x:g}" for x in np.round(np.asarray(v, dtype=float), 2)]
    return vals[0] if len(set(vals)) == 1 else "x".join(vals)


class ReceptiveFieldResult(Result):
    """Receptive-field table, probe, ERF maps and area ratios, or the growth-law experiment."""

    @property
    def tags(self) -> list[tuple[str, str]]:
        out = [("", "given weights" if self.info.get("trained") else "random weights (untrained model)")]
        if "erf_untrained_map" in self.arrays:
            out.append(("untrained_", "fresh random weights"))
        return out

    def figures(self) -> list:
        if self.info.get("experiment") == "erf_growth":
            return [self._growth_fig(), self._growth_profiles_fig()] if "growth_depths" in self.arrays else []
        if "rf_size" not in self.arrays:
            return []
        figs = [self._rf_growth_fig()]
        if "erf_map" in self.arrays:
            figs += [self._overlay_fig(), self._heatmaps_fig(), self._mass_fig(), self._ratio_table(),
                     self._profiles_fig()]
        figs.append(self._layer_table())
        return figs

    # -- theoretical RF ---------------------------------------------------------------------------
    def _rf_growth_fig(self) -> go.Figure:
        a = self.arrays
        names, ops = self.info.get("layer_names", []), self.info.get("layer_ops", [])
        kind, size, jump = a["rf_kind"], a["rf_size"].max(1), a["rf_jump"].max(1)
        idx = np.arange(len(kind))
        hover = [f"{names[i] if i < len(names) else i}<br>{ops[i] if i < len(ops) else ''}<br>"
                 f"RF {_fmt(a['rf_size'][i]) if kind[i] != 1 else 'global'} · jump {_fmt(a['rf_jump'][i])}"
                 for i in idx]
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        loc = kind != 1
        fig.add_trace(go.Scatter(x=idx[loc], y=size[loc], mode="lines+markers", name="RF size (px)",
                                 text=[hover[i] for i in idx[loc]], hoverinfo="text"), secondary_y=False)
        jl = kind == 0
        fig.add_trace(go.Scatter(x=idx[jl], y=jump[jl], mode="lines", name="jump (px)", line={"dash": "dot"},
                                 text=[hover[i] for i in idx[jl]], hoverinfo="text"), secondary_y=True)
        if (kind == 1).any():
            top = float(size[loc].max() * 1.6) if loc.any() else 1.0
            fig.add_trace(go.Scatter(x=idx[kind == 1], y=np.full(int((kind == 1).sum()), top), mode="markers",
                                     marker={"symbol": "x", "color": "crimson"}, name="global (whole input)",
                                     text=[hover[i] for i in idx[kind == 1]], hoverinfo="text"), secondary_y=False)
        sel = int(self.info.get("layer_index", -1))
        if sel >= 0:
            fig.add_vline(x=sel, line_dash="dash", line_color="gray", annotation_text=self.info.get("layer", ""))
        ticks: list[int] = []
        for i in idx:  # top-level modules only, and not so close that labels overlap
            if "." not in (names[i] if i < len(names) else ".") and (not ticks or i - ticks[-1] >= len(idx) / 30):
                ticks.append(int(i))
        fig.update_xaxes(tickvals=ticks, ticktext=[names[i] for i in ticks], title="layer (execution order)")
        fig.update_yaxes(type="log", title="theoretical RF size (input px)", secondary_y=False)
        top_jump = float(jump[jl].max()) if jl.any() else 1.0
        pow2 = [2.0 ** k for k in range(int(math.log2(max(top_jump, 1.0))) + 2)]
        fig.update_yaxes(type="log", title="jump (input px)", tickvals=pow2, secondary_y=True)
        fig.update_layout(title="Theoretical receptive field across layers (size and jump)", height=430,
                          margin={"l": 10, "r": 10, "t": 60, "b": 10}, legend={"orientation": "h", "y": -0.25})
        return fig

    def _layer_table(self) -> go.Figure:
        a, names, ops = self.arrays, self.info.get("layer_names", []), self.info.get("layer_ops", [])
        kind, approx = a["rf_kind"], a["rf_approx"]
        local = kind == 0

        def col(key: str) -> list[str]:
            return [_fmt(a[key][i]) if local[i] else "-" for i in range(len(kind))]

        status = [KINDS[int(k)] + (" (approx.)" if ap else "") for k, ap in zip(kind, approx, strict=True)]
        size = [_fmt(a["rf_size"][i]) if kind[i] in (0, 2) else "global" for i in range(len(kind))]
        cols = [names, ops, size, col("rf_jump"), col("rf_start"), col("rf_eff_padding"), status]
        head = ["layer", "op", "RF (px)", "jump", "start", "eff. padding", "status"]
        if "rf_size_ms" in a:
            cols.insert(3, [f"{v:.1f}" if v >= 0 else "-" for v in a["rf_size_ms"]])
            head.insert(3, "RF (ms)")
        fig = go.Figure(go.Table(header={"values": head}, cells={"values": cols, "align": "left"},
                                 columnwidth=[3, 3, 1.2, 1, 1, 1, 1.4] + ([1] if len(head) > 7 else [])))
        fig.update_layout(title="Receptive field per layer (pixel-centre convention, start = centre of unit 0)",
                          height=460, margin={"l": 10, "r": 10, "t": 50, "b": 10})
        return fig

    # -- effective RF -------------------------------------------------------------------------------
    def _overlay_fig(self) -> go.Figure:
        post = _log_norm(self.arrays["erf_map"])
        if post.ndim == 1:
            return self._overlay_1d(post)
        small, f = _block_mean(post)
        h, w = post.shape
        fig = go.Figure()
        if "display" in self.arrays and self.arrays["display"].ndim == 3:
            img = self.arrays["display"]
            dx, dy = w / img.shape[1], h / img.shape[0]
            fig.add_trace(go.Image(source=_png_uri(img), dx=dx, dy=dy, x0=(dx - 1) / 2, y0=(dy - 1) / 2,
                                   hoverinfo="skip"))
        fig.add_trace(_heatmap(small, f, colorscale="Inferno", opacity=0.55,
                               colorbar={"title": "log ERF", "len": 0.6, **LEVEL_TICKS}))
        self._boxes(fig, h, w)
        fig.update_xaxes(range=[-0.5, w - 0.5], visible=False)
        fig.update_yaxes(range=[h - 0.5, -0.5], visible=False, scaleanchor="x")
        fig.update_layout(title=f"ERF (log10(M+1)/max) of the centre unit of {self.info.get('layer')} over the "
                                f"input, theoretical RF box (white) and area-ratio squares", height=560,
                          margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return fig

    def _boxes(self, fig: go.Figure, h: int, w: int) -> None:
        a = self.arrays
        if "trf_box_lo" in a:
            lo, hi = a["trf_box_lo"], a["trf_box_hi"]
            clip = lo[0] < 0 or lo[1] < 0 or hi[0] > h - 1 or hi[1] > w - 1
            fig.add_shape(type="rect", x0=max(lo[1], 0) - 0.5, x1=min(hi[1], w - 1) + 0.5, y0=max(lo[0], 0) - 0.5,
                          y1=min(hi[0], h - 1) + 0.5, line={"color": "white", "width": 3})
            fig.add_annotation(x=max(lo[1], 0), y=max(lo[0], 0), xanchor="left", yanchor="top", showarrow=False,
                               text=f"TRF {_fmt(hi - lo + 1)} px" + (" (clipped)" if clip else ""),
                               font={"color": "white"}, bgcolor="rgba(0,0,0,0.4)")
        for t, side, colour in zip(THRESHOLDS, a["erf_sides"], T_COLOURS, strict=True):
            half = (int(side) - 1) / 2
            fig.add_shape(type="rect", x0=w // 2 - half - 0.5, x1=w // 2 + half + 0.5, y0=h // 2 - half - 0.5,
                          y1=h // 2 + half + 0.5, line={"color": colour, "dash": "dash", "width": 2})
            fig.add_annotation(x=w // 2 + half, y=h // 2 - half, text=f"{t}%", showarrow=False,
                               font={"color": colour}, xanchor="right", yanchor="bottom")

    def _overlay_1d(self, post: np.ndarray) -> go.Figure:
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        t = np.arange(len(post))
        if "display" in self.arrays:
            sig = np.atleast_2d(self.arrays["display"])
            xs = np.linspace(0, len(post) - 1, sig.shape[-1])
            for c in range(min(sig.shape[0], 8)):
                fig.add_trace(go.Scatter(x=xs, y=sig[c], mode="lines", name=f"input ch {c}", opacity=0.6),
                              secondary_y=False)
        fig.add_trace(go.Scatter(x=t, y=post, mode="lines", name="ERF (log-normalised)",
                                 line={"color": "crimson", "width": 3}), secondary_y=True)
        if "trf_box_lo" in self.arrays:
            fig.add_vrect(x0=float(self.arrays["trf_box_lo"][-1]), x1=float(self.arrays["trf_box_hi"][-1]),
                          fillcolor="gray", opacity=0.15, annotation_text="theoretical RF")
        fig.update_xaxes(title="time sample" if self.info.get("sampling_rate") is None else
                         f"time sample (fs = {self.info['sampling_rate']} Hz)")
        fig.update_layout(title=f"ERF of the centre unit of {self.info.get('layer')} over the input", height=420)
        return fig

    def _heatmaps_fig(self) -> go.Figure:
        tags = self.tags
        one_d = self.arrays["erf_map"].ndim == 1
        fig = make_subplots(rows=1, cols=len(tags), subplot_titles=[label for _, label in tags])
        for c, (tag, _) in enumerate(tags, start=1):
            post = _log_norm(self.arrays[f"erf_{tag}map"])
            if one_d:
                fig.add_trace(go.Scatter(y=post, mode="lines", name=tag or "given"), 1, c)
                continue
            small, f = _block_mean(post)
            fig.add_trace(_heatmap(small, f, colorscale="RdYlGn", showscale=c == len(tags),
                                   colorbar=LEVEL_TICKS), 1, c)
            fig.update_yaxes(autorange="reversed", scaleanchor=f"x{c if c > 1 else ''}", row=1, col=c)
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False)
        fig.update_layout(title="ERF, log10(M + 1) / max as in RepLKNet (RdYlGn)", height=480,
                          margin={"l": 10, "r": 10, "t": 70, "b": 10})
        return fig

    def _mass_fig(self) -> go.Figure:
        fig = go.Figure()
        for tag, label in self.tags:
            fig.add_trace(go.Scatter(x=self.arrays[f"erf_{tag}curve_sides"], y=self.arrays[f"erf_{tag}curve_frac"],
                                     mode="lines", name=label))
            fig.add_trace(go.Scatter(x=self.arrays[f"erf_{tag}sides"], y=np.array(THRESHOLDS) / 100,
                                     mode="markers", name=f"{label}: t crossings", marker={"size": 9}))
        for t, colour in zip(THRESHOLDS, T_COLOURS, strict=True):
            fig.add_hline(y=t / 100, line_dash="dot", line_color=colour, annotation_text=f"t = {t}%")
        fig.update_xaxes(title="side of the centred square (px)")
        fig.update_yaxes(title="fraction of the log-normalised mass", range=[0, 1.02])
        fig.update_layout(title="Cumulative ERF mass in centred squares (RepLKNet's area-ratio procedure)",
                          height=420, margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return fig

    def _ratio_table(self) -> go.Figure:
        head, cols = ["t"], [[f"{t}%" for t in THRESHOLDS]]
        for tag, label in self.tags:
            head += [f"side px ({label})", f"area ratio ({label})"]
            cols += [[str(int(s)) for s in self.arrays[f"erf_{tag}sides"]],
                     [f"{100 * r:.2f}%" for r in self.arrays[f"erf_{tag}ratios"]]]
        fig = go.Figure(go.Table(header={"values": head}, cells={"values": cols}))
        shape = "x".join(str(s) for s in self.arrays["erf_map"].shape)
        fig.update_layout(title=f"High-contribution area ratio on a {shape} input "
                                f"({self.info.get('erf_inputs', '')})", height=260,
                          margin={"l": 10, "r": 10, "t": 50, "b": 10})
        return fig

    def _profiles_fig(self) -> go.Figure:
        axes = self.info.get("axis_names", [])
        n = self.arrays["erf_map"].ndim
        titles = [f"through the centre, along {axes[a] if a < len(axes) else a}" for a in range(n)]
        fig = make_subplots(rows=1, cols=n, subplot_titles=titles)
        for a in range(n):
            for tag, label in self.tags:
                p = self.arrays[f"erf_{tag}profile_{a}"]
                p = p / p.max() if p.max() > 0 else p
                x = np.arange(len(p)) - len(p) // 2
                sigma = float(self.arrays[f"erf_{tag}std"][a])
                fig.add_trace(go.Scatter(x=x, y=p, mode="lines", name=f"{label}", legendgroup=tag,
                                         showlegend=a == 0), 1, a + 1)
                fig.add_trace(go.Scatter(x=x, y=np.exp(-x ** 2 / (2 * max(sigma, 1e-9) ** 2)), mode="lines",
                                         line={"dash": "dash"}, name=f"Gaussian, sigma = {sigma:.1f} px",
                                         legendgroup=tag, showlegend=True), 1, a + 1)
            fig.update_xaxes(title="offset from centre (px)", row=1, col=a + 1)
        fig.update_layout(title="Central ERF profiles (peak-normalised) with the Gaussian of the measured std",
                          height=400, margin={"l": 10, "r": 10, "t": 70, "b": 10})
        return fig

    # -- growth law ---------------------------------------------------------------------------------
    def _growth_fig(self) -> go.Figure:
        a = self.arrays
        n, sig, trf = a["growth_depths"].astype(float), a["growth_sigma"].mean(1), a["growth_trf"]
        e, c = self.metrics.get("erf_depth_exponent", float("nan")), self.metrics.get("erf_depth_coefficient", 1.0)
        grid = np.geomspace(n.min(), n.max(), 50)
        fig = go.Figure([
            go.Scatter(x=n, y=sig, mode="markers", name="measured ERF std (px)", marker={"size": 10}),
            go.Scatter(x=grid, y=c * grid ** e, mode="lines", name=f"fit {c:.2f} n^{e:.3f}"),
            go.Scatter(x=grid, y=np.sqrt(2 * grid / 3), mode="lines", line={"dash": "dot"},
                       name="sqrt(2n/3): linear-theory std"),
            go.Scatter(x=n, y=trf, mode="lines+markers", line={"dash": "dash"}, name="theoretical RF 2n+1 (slope 1)")])
        fig.update_xaxes(type="log", title="depth n (stacked 3x3 convs)")
        fig.update_yaxes(type="log", title="px")
        fig.update_layout(title=f"ERF growth law: std grows like n^{e:.3f} (Luo et al.: 0.5), "
                                f"the theoretical RF like n", height=440,
                          margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return fig

    def _growth_profiles_fig(self) -> go.Figure:
        a = self.arrays
        prof = a["growth_profiles"]
        x = np.arange(prof.shape[1]) - prof.shape[1] // 2
        fig = go.Figure([go.Scatter(x=x, y=prof[i], mode="lines", name=f"n = {int(d)}")
                         for i, d in enumerate(a["growth_depths"])])
        fig.update_xaxes(title="offset from the centre unit (px)")
        fig.update_yaxes(title="ERF marginal (peak = 1)")
        fig.update_layout(title="ERF profiles: Gaussian-shaped, widening slowly with depth", height=380,
                          margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return fig

    # -- text ----------------------------------------------------------------------------------------
    def summary(self) -> str:
        m = self.metrics
        if self.info.get("experiment") == "erf_growth":
            d = ", ".join(str(int(v)) for v in self.arrays.get("growth_depths", []))
            return (f"On random stacks of 3x3 convolutions (depths {d}, {self.info.get('weights')} weights, "
                    f"{self.info.get('activation')}, {self.info.get('draws')} draws) the ERF std grows like "
                    f"n^{m.get('erf_depth_exponent', float('nan')):.3f} (Luo et al.: 0.5) while the theoretical "
                    f"RF grows like n, so ERF/TRF shrinks like 1/sqrt(n).")
        layer = self.info.get("layer", "?")
        if m.get("rf_global"):
            parts = [f"Layer {layer} has a GLOBAL receptive field: a global operator (pooling to 1, "
                     "squeeze-excitation, attention or a batch-statistics norm) lets every unit see the whole input."]
        else:
            ms = f" ({m['rf_size_ms']:.1f} ms)" if "rf_size_ms" in m else ""
            unit = "px" if self.info.get("kind", "image2d") == "image2d" else "samples"
            parts = [f"Layer {layer}: theoretical RF {m.get('rf_size', -1):g} {unit}{ms}, "
                     f"jump {m.get('rf_jump', -1):g}, start {m.get('rf_start', 0):g}, "
                     f"effective padding {m.get('rf_eff_padding', 0):g}."]
        if "probe_disagreement_px" in m:
            parts.append(f"The gradient probe measured {m['probe_rf_size']:g} px "
                         f"(disagreement {m['probe_disagreement_px']:g} px).")
        elif self.info.get("probe_note"):
            parts.append(f"Probe {self.info['probe_note']}.")
        for tag, label in self.tags:
            if f"erf_{tag}area_ratio_t99" in m:
                r = [100 * m[f"erf_{tag}area_ratio_t{t}"] for t in THRESHOLDS]
                parts.append(f"ERF with {label}: area ratio {r[0]:.2f}/{r[1]:.2f}/{r[2]:.2f}/{r[3]:.2f}% at "
                             f"t = 20/30/50/99%, std {m[f'erf_{tag}std_px']:.1f} px.")
        if self.info.get("erf_inputs"):
            parts.append(f"ERF inputs: {self.info['erf_inputs']}.")
        if self.info.get("warnings"):
            parts.append("Unknown ops treated as global: " + "; ".join(self.info["warnings"][:3]) + ".")
        return " ".join(parts)
