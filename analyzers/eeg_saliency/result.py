"""The eeg_saliency result: traces over heat maps, scalp topomaps, band relevance, filter responses,
planted-truth scores, the BatchNorm trap and per-subject LOSO accuracy, all from stored arrays."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analyzers._shared.quality_figure import quality_figures
from analyzers.eeg_saliency.texts import BN_TRAP_TEXT, FIXES_TEXT, NO_TRUTH_TEXT, WHY_TEXT
from workbench.core.plots import SIGNED_TICKS, bars, column_colorbar
from workbench.core.result import Result

__all__ = ["EegSaliencyResult", "FIXES_TEXT", "WHY_TEXT", "BN_TRAP_TEXT", "NO_TRUTH_TEXT"]

METHODS = ("cam", "lrp", "ig")
LABELS = {"cam": "CAM variant (Cui et al.)", "lrp": "LRP-epsilon (zennit)", "ig": "Integrated Gradients (captum)"}
SHORT = {"cam": "CAM variant", "lrp": "LRP", "ig": "Integrated Gradients"}
PREFIX = {"cam": "", "lrp": "lrp_", "ig": "ig_"}
SCORE_NAMES = {"cam": ("saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game")} | {
    m: (f"{m}_mass_in_bursts", f"{m}_posterior_share", f"{m}_pointing_game") for m in ("lrp", "ig")}
BAND_NAMES = ("delta", "theta", "alpha", "beta", "rest")
def _norm(h: np.ndarray) -> np.ndarray:
    """The paper's display scale for one map (C, T): (H - mean) / RMS, clipped to [-1, 1]."""
    h = np.asarray(h, np.float64)
    rms = np.sqrt((h * h).mean())
    return np.clip((h - h.mean()) / (rms if rms > 0 else 1.0), -1, 1)


def _mask_segments(mask_t: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask_t.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


class EegSaliencyResult(Result):
    """A data-set merge builds this class from the chunk results: its localization and randomization metrics are
    then recomputed over every evaluated window of the set (``_set_level``), not averaged per chunk.

    Arrays: show_signal (C, T) uV, show_<m> (C, T), show_mask (C, T) bool, probs (N, K), pred, labels,
    subjects, scores_<m> (N, 3) and random_scores_<m> (N, 3) (mass, posterior share, pointing hit under the
    run's readout; the randomized model's, zero outside the evaluated windows), evaluated (N,) bool, burst_fraction
    (N,), random_<m>_example (C, T), variant_scores (N, V, 2, R, 3) (config variants), topo_xy (C, 2),
    topo_x / topo_y (G,) and topo_inside (G, G) (MNE's interpolation grid; older results: topo_axis),
    topo_outline (K, 2) and topo_outline_breaks (MNE's head outline), topo_<m> (G, G), channel_relevance_<m> (C,),
    band_relevance (N, B+1), band_relevance_by_class (K, B+1), quality_* (the quality panel, option quality; eMPRT
    and random logit with quality_randomization),
    filter_freqs (F,), filter_gain (32, F), filter_contrast (32,), filter_peak_hz (32,), bn_*_prob (N,),
    loso_subjects / loso_accuracy / loso_n_windows (S,)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "dataset" in self.info:  # only a data-set merge sets it; a loaded result keeps its stored figures
            self._set_level()

    def _set_level(self) -> None:
        from analyzers.eeg_saliency.truth import set_level

        set_level(self.metrics, self.checks, self.arrays)
        rel, pred = self.arrays.get("band_relevance"), self.arrays.get("pred")
        if rel is not None and pred is not None and len(rel) == len(pred):
            k = len(self.info.get("class_names", ["alert", "drowsy"]))
            by = np.stack([rel[pred == c].mean(0) if (pred == c).any() else np.zeros(rel.shape[1]) for c in range(k)])
            self.arrays["band_relevance_by_class"] = by.astype(np.float32)
            for name, v in zip(BAND_NAMES[:-1], by[k - 1], strict=False):
                if f"band_relevance_{name}" in self.metrics:
                    self.metrics[f"band_relevance_{name}"] = float(v)

    @property
    def methods(self) -> list[str]:
        return [m for m in self.info.get("methods", []) if f"show_{m}" in self.arrays]

    def _channels(self, c: int) -> list[str]:
        ch = list(self.info.get("channels", []))
        return ch if len(ch) == c else [f"ch{i}" for i in range(c)]

    def figures(self) -> list:
        if self.info.get("layout") == "iclabel_sheet":  # ICLabel's feature sheets: analyzers/eeg_saliency/iclabel_*
            from analyzers.eeg_saliency.iclabel_figures import figures
            return figures(self)
        if "show_signal" not in self.arrays:  # e.g. the protocol alone, merged from LOSO's fold cells
            return [fig for fig in (self._loso(),) if fig is not None]
        figs = [self._traces(m) for m in self.methods[:1]]
        if len(self.methods) > 1:
            figs.append(self._map_grid())
        for fig in (self._topomaps(), self._scores(), self._variants(), self._bands(), self._filters(), self._loso(),
                    self._bn()):
            if fig is not None:
                figs.append(fig)
        return figs + quality_figures(self.arrays, self.info, {m: self._label(m) for m in self.methods})

    def _label(self, m: str) -> str:
        """The method's name in titles: on networks other than Cui et al.'s the CAM is Grad-CAM at a named layer."""
        if m == "cam" and self.info.get("layout") == "generic":
            return f"Grad-CAM ({self.info.get('cam_layer', '?')})"
        return LABELS[m]

    def _short(self, m: str) -> str:
        return "Grad-CAM" if m == "cam" and self.info.get("layout") == "generic" else SHORT[m]

    # -- traces and maps ---------------------------------------------------------------------------
    def _traces(self, method: str) -> go.Figure:
        sig, sfreq = self.arrays["show_signal"], float(self.info.get("sfreq", 128.0))
        c, t = sig.shape
        names, time = self._channels(c), np.arange(t) / sfreq
        fig = go.Figure(go.Heatmap(z=_norm(self.arrays[f"show_{method}"]), x=time, y=list(range(c)), zmin=-1,
                                   zmax=1, colorscale="Viridis", opacity=0.85, colorbar={"title": "H (RMS)"},
                                   hovertemplate="t=%{x:.2f}s %{text}<br>H=%{z:.2f}<extra></extra>",
                                   text=[[n] * t for n in names]))
        spread = max(float(np.percentile(np.abs(sig), 99)), 1e-6)
        for i in range(c):
            fig.add_trace(go.Scatter(x=time, y=i + 0.45 * sig[i] / spread, mode="lines", showlegend=False,
                                     line={"color": "white", "width": 0.8}, hoverinfo="skip"))
        mask = self.arrays.get("show_mask")
        if mask is not None and mask.any():
            rows = np.flatnonzero(mask.any(1))
            for a, b in _mask_segments(mask.any(0)):
                fig.add_shape(type="rect", x0=a / sfreq, x1=b / sfreq, y0=rows.min() - 0.5, y1=rows.max() + 0.5,
                              line={"color": "crimson", "dash": "dash", "width": 2})
        k = int(self.info.get("window", 0))
        p = self.arrays["probs"][k]
        cls = self.info.get("class_names", ["alert", "drowsy"])
        title = (f"{self._label(method)} over the traces of {self.info.get('window_id', k)} — "
                 + ", ".join(f"P({n})={p[j]:.2f}" for j, n in enumerate(cls[: len(p)]))
                 + (" — dashed: planted alpha bursts" if mask is not None and mask.any() else ""))
        fig.update_yaxes(tickvals=list(range(c)), ticktext=names, autorange="reversed", title="channel")
        fig.update_xaxes(title="time (s)")
        fig.update_layout(title=title, height=720, margin={"l": 60, "r": 20, "t": 60, "b": 40})
        return fig

    def _map_grid(self) -> go.Figure:
        panels = [(self._label(m), self.arrays[f"show_{m}"], m == "cam") for m in self.methods]
        if self.info.get("random_example_window") == self.info.get("window"):
            panels += [(f"{self._short(m)}, re-initialized model", self.arrays[f"random_{m}_example"], m == "cam")
                       for m in self.methods if f"random_{m}_example" in self.arrays]
        sig = self.arrays["show_signal"]
        names, time = self._channels(sig.shape[0]), np.arange(sig.shape[1]) / float(self.info.get("sfreq", 128.0))
        fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], shared_yaxes=True,
                            horizontal_spacing=0.03)
        scaled: set[bool] = set()  # one colour bar per kind of scale (CAM's mean/RMS, the signed maps'), under its
        for j, (_, arr, cam) in enumerate(panels):  # first panel: the two scales differ and must not share a bar
            z = _norm(arr) if cam else arr / max(float(np.abs(arr).max()), 1e-30)
            bar = column_colorbar(fig, j + 1, "CAM, mean/RMS scale" if cam else "signed, 0 = white",
                                  SIGNED_TICKS) | {"y": -0.08}
            fig.add_trace(go.Heatmap(z=z, x=time, y=names, zmin=-1, zmax=1, colorscale="Viridis" if cam
                                     else "RdBu_r", showscale=cam not in scaled, colorbar=bar), 1, j + 1)
            scaled.add(cam)
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(title="The same window by each method (CAM: mean/RMS scale; LRP, IG: signed, scaled by "
                                "max |value|)", height=600, margin={"l": 60, "r": 20, "t": 70, "b": 100})
        return fig

    def _topomaps(self) -> go.Figure | None:
        """MNE's interpolated topomaps (analyzers/eeg_saliency/topo.py) as Plotly heatmaps, with MNE's head outline
        and sensors. Results saved before MNE interpolated them (topo_axis) are drawn on that grid."""
        ms = [m for m in self.methods if f"topo_{m}" in self.arrays]
        if not ms or "topo_xy" not in self.arrays:
            return None
        a = self.arrays
        x, y = (a["topo_x"], a["topo_y"]) if "topo_x" in a else (a["topo_axis"], a["topo_axis"])
        xy, names = a["topo_xy"], self._channels(len(a["topo_xy"]))
        fig = make_subplots(rows=1, cols=len(ms), subplot_titles=[self._label(m) for m in ms], horizontal_spacing=0.04)
        for j, m in enumerate(ms):
            grid = np.asarray(a[f"topo_{m}"], np.float64)
            if "topo_inside" in a:  # display only: blank outside the head
                grid = np.where(a["topo_inside"], grid, np.nan)
            peak = max(float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0, 1e-30)
            fig.add_trace(go.Heatmap(z=grid / peak, x=x, y=y, colorscale="Viridis", zmin=0, zmax=1, hoverongaps=False,
                                     showscale=j == len(ms) - 1, colorbar={"title": "of peak"}), 1, j + 1)
            fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers+text", text=names,
                                     textfont={"size": 9, "color": "white"}, textposition="top center",
                                     marker={"color": "white", "size": 4, "line": {"color": "black", "width": 1}},
                                     showlegend=False, hovertext=[f"{n}: {v:.3f}" for n, v in zip(
                                         names, a[f"channel_relevance_{m}"], strict=True)]), 1, j + 1)
            if "topo_outline" in a:  # MNE's head, nose and ears; a NaN row between parts breaks the line
                line = np.insert(np.asarray(a["topo_outline"], np.float64), a["topo_outline_breaks"], np.nan, axis=0)
                fig.add_trace(go.Scatter(x=line[:, 0], y=line[:, 1], mode="lines", showlegend=False,
                                         line={"color": "black"}, hoverinfo="skip", connectgaps=False), 1, j + 1)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False, scaleanchor="x")
        fig.update_layout(title="Scalp topomaps: share of |relevance| per channel, each map scaled to its peak<br>"
                                "<sup>MNE's interpolation and head outline (plot_topomap), colin27 10-20 positions, "
                                "nose up</sup>",
                          height=440, margin={"l": 10, "r": 10, "t": 95, "b": 10})
        return fig

    # -- numbers -----------------------------------------------------------------------------------
    def _scores(self) -> go.Figure | None:
        rows = []
        for m in self.methods:
            rows.append((self._short(m), *SCORE_NAMES[m]))
            p = PREFIX[m]
            rows.append((f"{self._short(m)}, re-initialized", f"{p}randomized_mass_in_bursts",
                         f"{p}randomized_posterior_share", f"{p}randomized_pointing_game"))
        rows.append(("CAM, other class", "other_class_mass_in_bursts", "other_class_posterior_share",
                     "other_class_pointing_game"))
        rows = [r for r in rows if r[1] in self.metrics]
        if not rows:
            return None
        fig = go.Figure()
        for k, title in enumerate(("mass in bursts", "posterior share", "pointing game")):
            vals = [self.metrics.get(r[k + 1], float("nan")) for r in rows]
            fig.add_trace(go.Bar(name=title, x=[r[0] for r in rows], y=vals, text=[f"{v:.2f}" for v in vals]))
        for v, name in ((self.metrics.get("chance_mass_in_bursts"), "chance: mass"),
                        (self.metrics.get("chance_posterior_share"), "chance: posterior")):
            if v is not None:
                fig.add_hline(y=v, line_dash="dot", annotation_text=f"{name} {v:.2f}")
        fig.add_hline(y=0.8, line_dash="dash", line_color="crimson", annotation_text="mass target 0.8")
        fig.update_layout(barmode="group", title=f"Planted truth: {int(self.metrics.get('n_evaluated', 0))} correctly "
                          f"classified drowsy windows, {self.info.get('readout', 'positive')} relevance; each map and "
                          "the same map of a re-initialized model", yaxis={"range": [0, 1.05]}, height=420)
        return fig

    def variant_table(self) -> list[dict] | None:
        """Mean scores of every LRP / IG variant over the evaluated windows (config ``variants``): one row per
        variant with trained mass / posterior / pointing per readout and the randomized model's positive mass."""
        vs, ev = self.arrays.get("variant_scores"), self.arrays.get("evaluated")
        if vs is None or ev is None or not np.asarray(ev).any():
            return None
        from analyzers.eeg_saliency.localization import READOUTS

        mean = vs[np.asarray(ev, bool)].astype(np.float64).mean(0)  # (V, 2, R, 3)
        rows = []
        for v, name in enumerate(self.info.get("variants", [])):
            row = {"variant": name}
            for r, how in enumerate(READOUTS):
                row.update({f"{how} mass": mean[v, 0, r, 0], f"{how} posterior": mean[v, 0, r, 1],
                            f"{how} pointing": mean[v, 0, r, 2]})
            row.update({"randomized positive mass": mean[v, 1, 0, 0], "randomized pointing": mean[v, 1, 0, 2],
                        "drop": mean[v, 0, 0, 0] - mean[v, 1, 0, 0]})
            rows.append(row)
        return rows

    def _variants(self) -> go.Figure | None:
        rows = self.variant_table()
        if not rows:
            return None
        cols = list(rows[0])
        cells = [[r[c] if c == "variant" else f"{r[c]:.3f}" for r in rows] for c in cols]
        fig = go.Figure(go.Table(header={"values": cols}, cells={"values": cells},
                                 columnwidth=[4] + [1] * (len(cols) - 1)))
        fig.update_layout(title="LRP and IG variants on the same windows: mass in bursts, posterior share and pointing "
                                "game per readout, and the randomized model (issue 17)",
                          height=120 + 28 * len(rows), margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return fig

    def localization_verdicts(self) -> list[tuple[str, bool, str]]:
        """(method, localizes, one plain sentence) per computed map with planted truth: a map localizes when its
        mass, posterior-share, pointing-game and randomization-drop checks all hold."""
        checks = {c.name: c for c in self.checks}
        out = []
        for m in self.methods:
            mass, post, point = SCORE_NAMES[m]
            drop = f"{PREFIX[m]}randomization_drop"
            if mass not in self.metrics:
                continue
            failed = [c for c in (mass, post, point, drop) if c in checks and not checks[c].passed]
            mt = self.metrics
            text = (f"{self._short(m)} {'localizes' if not failed else 'does NOT localize'} the planted bursts: "
                    f"{mt[mass]:.2f} of its {self.info.get('readout', 'positive')} relevance inside them (chance "
                    f"{mt.get('chance_mass_in_bursts', 0):.2f}, target 0.8), {mt[post]:.2f} on posterior channels "
                    f"(target 0.9), pointing game {mt[point]:.2f} (target 0.9)")
            if drop in mt:
                text += (f"; a re-initialized model scores {mt[f'{PREFIX[m]}randomized_mass_in_bursts']:.2f}, "
                         f"a drop of {mt[drop]:.2f} (target 0.2)")
            text += "." if not failed else f" (failed: {', '.join(failed)})."
            out.append((m, not failed, text))
        return out

    def _bands(self) -> go.Figure | None:
        by_class = self.arrays.get("band_relevance_by_class")
        if by_class is None:
            return None
        cls = self.info.get("class_names", ["alert", "drowsy"])
        names = list(self.info.get("bands", BAND_NAMES))
        fig = go.Figure([go.Bar(name=f"windows predicted {cls[k]}", x=names, y=by_class[k].tolist(),
                                text=[f"{v:.2f}" for v in by_class[k]]) for k in range(len(by_class))])
        fig.update_layout(barmode="group", height=380, yaxis_title="IG relevance (logit units)",
                          title="Relevance by frequency band<br><sup>Integrated Gradients of the predicted class, "
                                "split exactly over band-limited parts of the input</sup>")
        return fig

    def _filters(self) -> go.Figure | None:
        if "filter_gain" not in self.arrays:
            return None
        f, gain, con = self.arrays["filter_freqs"], self.arrays["filter_gain"], self.arrays["filter_contrast"]
        db = 20 * np.log10(np.maximum(gain / np.maximum(gain.max(1, keepdims=True), 1e-30), 1e-4))
        fig = go.Figure()
        lim = max(float(np.abs(con).max()), 1e-12)
        for i in np.argsort(-np.abs(con)):
            shade = int(255 * min(1.0, abs(con[i]) / lim))
            color = f"rgba({shade},40,40,0.8)" if con[i] > 0 else f"rgba(40,40,{shade},0.8)"
            fig.add_trace(go.Scatter(x=f, y=db[i], mode="lines", line={"color": color, "width": 1},
                                     name=f"filter {i} ({con[i]:+.2f})", showlegend=False))
        fig.add_vrect(x0=8, x1=12, fillcolor="gold", opacity=0.2, line_width=0, annotation_text="alpha")
        share = self.metrics.get("filter_alpha_share")
        fig.update_layout(title="Learned temporal filters: frequency response (red: drowsy evidence, blue: alert)"
                                + (f"<br>alpha share of the drowsy evidence {share:.2f}" if share is not None else ""),
                          xaxis={"title": "frequency (Hz)", "range": [0, 45]}, yaxis_title="gain (dB, per filter)",
                          height=400)
        return fig

    def _loso(self) -> go.Figure | None:
        if "loso_accuracy" not in self.arrays:
            return None
        subj, acc = self.arrays["loso_subjects"], self.arrays["loso_accuracy"]
        fig = bars([f"S{int(s)}" for s in subj], acc.tolist(), "Leave-one-subject-out accuracy per held-out subject",
                   xlabel="accuracy", orientation="v")
        fig.update_layout(yaxis={"range": [0, 1.1]}, height=380)
        fig.add_hline(y=float(acc.mean()), line_dash="dash", line_color="crimson",
                      annotation_text=f"mean {acc.mean():.3f} ± {acc.std():.3f}")
        return fig

    def _bn(self) -> go.Figure | None:
        if "bn_batch_prob" not in self.arrays:
            return None
        b, a, f = self.arrays["bn_batch_prob"], self.arrays["bn_alone_prob"], self.arrays["bn_frozen_prob"]
        fig = go.Figure([go.Scatter(x=b, y=a, mode="markers", name="batch statistics: in batch vs alone"),
                         go.Scatter(x=f, y=f, mode="markers", name="frozen statistics (identical alone)",
                                    marker={"symbol": "x"})])
        fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
        fig.update_layout(title="BatchNorm trap: P(drowsy) of each window in its batch (x) and alone (y)",
                          xaxis_title="P(drowsy) in the batch", yaxis_title="P(drowsy) alone", height=420)
        return fig

    def _generic_notes(self) -> list[str]:
        """What a run on a network other than Cui et al.'s computes instead, and the rank-correlation control."""
        out = []
        if self.info.get("layout") == "generic" and "cam" in self.methods:
            out.append(f"{self.info.get('architecture') or 'This network'} is not Cui et al.'s layout, so the CAM is "
                       f"Grad-CAM at {self.info.get('cam_layer')}" + ("." if self.info.get("cam_channels") else
                       ", which comes after the spatial filters: its map is a time profile, the same on every "
                       "channel, so its channel scores and topomap say nothing (cam_layer picks another layer)."))
        if self.info.get("lrp_problems"):
            out.append("LRP on this network is not exact: " + "; ".join(self.info["lrp_problems"]) + ".")
        for m in self.methods:
            key = f"{PREFIX[m]}randomization_rank_corr"
            if key in self.metrics:
                v = self.metrics[key]
                out.append(f"{self._short(m)}: rank correlation with the re-initialized model's map {v:.2f} "
                           f"({'passes' if v < 0.5 else 'FAILS'}: must stay below 0.5).")
        return out

    def _quality_notes(self) -> list[str]:
        """One sentence per map of the quality panel: deletion / insertion AUC against the random map."""
        m, out = self.metrics, []
        for k in self.methods:
            if f"quality_margin_{k}" not in m:
                continue
            beats = m[f"quality_margin_{k}"] > 0
            out.append(f"Quality panel, {self._short(k)}: deletion AUC {m[f'quality_deletion_auc_{k}']:.3f} (random "
                       f"{m['quality_deletion_auc_random']:.3f}, lower is better), insertion AUC "
                       f"{m[f'quality_insertion_auc_{k}']:.3f} (random {m['quality_insertion_auc_random']:.3f}, higher "
                       f"is better): {'beats' if beats else 'does NOT beat'} a random map; Gini "
                       f"{m[f'quality_gini_{k}']:.2f}.")
            if f"quality_emprt_{k}" in m:
                out.append(f"eMPRT, {self._short(k)}: entropy rise {m[f'quality_emprt_{k}']:.2f} when every layer "
                           f"is re-drawn (must be above {self.info.get('quality_emprt_min_rise', 0):g}).")
            if f"quality_logit_ssim_{k}" in m:  # binary contrast: the other class's contrast is minus this one's
                rho = m.get(f"quality_logit_rank_corr_{k}", 0.0)
                flip = " (|map| rank correlation ~1: the map only changes sign)" if rho > 0.99 else ""
                out.append(f"Random logit, {self._short(k)}: SSIM {m[f'quality_logit_ssim_{k}']:.2f} to another "
                           f"class's map (must be below {self.info.get('quality_logit_ssim_max', 0.9):g}){flip}.")
        return out

    def summary(self) -> str:
        if self.info.get("layout") == "iclabel_sheet":
            from analyzers.eeg_saliency.iclabel_figures import summary
            return summary(self)
        m = self.metrics
        parts = [f"{int(m.get('n_windows', 0))} windows analysed"
                 + (f", accuracy {m['accuracy']:.3f}" if "accuracy" in m else "") + "."]
        verdicts = self.localization_verdicts()
        if verdicts:
            parts.append(f"On {int(m.get('n_evaluated', 0))} correctly classified drowsy windows:")
            parts += [v[2] for v in verdicts]
            if any(not ok for k, ok, _ in verdicts if k != "cam") and self.info.get("layout", "cui") == "cui":
                parts.append(WHY_TEXT)
        elif not self.info.get("has_truth"):
            parts.append(NO_TRUTH_TEXT)
        parts += self._generic_notes() + self._quality_notes()
        if "band_relevance_alpha" in m:
            parts.append(f"IG relevance of the alpha band for windows predicted drowsy: "
                         f"{m['band_relevance_alpha']:.2f} (logit units).")
        if "loso_mean_acc" in m:
            parts.append(f"Leave-one-subject-out: mean accuracy {m['loso_mean_acc']:.3f} ± {m['loso_std_acc']:.3f} "
                         f"over {int(m['loso_folds'])} subject(s).")
        if "bn_trap_flip_rate" in m:
            parts.append(BN_TRAP_TEXT.format(mode=self.info.get("bn_mode", "frozen"), flip=m["bn_trap_flip_rate"],
                                             shift=m["bn_trap_max_prob_shift"], frozen=m["bn_frozen_max_prob_shift"]))
        return " ".join(parts)
