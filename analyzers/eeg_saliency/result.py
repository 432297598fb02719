"""The eeg_saliency result: traces over heat maps, scalp topomaps, band relevance, filter responses,
planted-truth scores, the BatchNorm trap and per-subject LOSO accuracy, all from stored arrays."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.plots import bars
from workbench.core.result import Result

METHODS = ("cam", "lrp", "ig")
LABELS = {"cam": "CAM variant (Cui et al.)", "lrp": "LRP-epsilon (zennit)", "ig": "Integrated Gradients (captum)"}
BAND_NAMES = ("delta", "theta", "alpha", "beta", "rest")
BN_TRAP_TEXT = (
    "BatchNorm trap: Cui et al.'s network normalises with the statistics of the batch it is given, also at test "
    "time, so a window's prediction and map depend on which other windows share its batch (a window alone is "
    "normalised over its own 3 s only). This run uses {mode} statistics; with batch statistics {flip:.0%} of the "
    "windows change class and P(drowsy) moves by up to {shift:.2f} between 'in the batch' and 'alone' (alone, "
    "each map is normalised by its own time statistics, so after global average pooling every window gets the "
    "same output), while the frozen population statistics (set after training, and folded into the last layer "
    "for LRP and IG) move it by {frozen:.1e}.")


def _norm(h: np.ndarray) -> np.ndarray:
    """The paper's display scale for one map (C, T): (H - mean) / RMS, clipped to [-1, 1]."""
    h = np.asarray(h, np.float64)
    rms = np.sqrt((h * h).mean())
    return np.clip((h - h.mean()) / (rms if rms > 0 else 1.0), -1, 1)


def _mask_segments(mask_t: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask_t.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


class EegSaliencyResult(Result):
    """Arrays: show_signal (C, T) uV, show_<m> (C, T), show_mask (C, T) bool, probs (N, K), pred, labels,
    subjects, scores_<m> (N, 3), evaluated (N,) bool, topo_xy (C, 2), topo_axis (G,), topo_inside (G, G),
    topo_<m> (G, G), channel_relevance_<m> (C,), band_relevance (N, B+1), band_relevance_by_class (K, B+1),
    filter_freqs (F,), filter_gain (32, F), filter_contrast (32,), filter_peak_hz (32,), bn_*_prob (N,),
    loso_subjects / loso_accuracy / loso_n_windows (S,)."""

    @property
    def methods(self) -> list[str]:
        return [m for m in self.info.get("methods", []) if f"show_{m}" in self.arrays]

    def _channels(self, c: int) -> list[str]:
        ch = list(self.info.get("channels", []))
        return ch if len(ch) == c else [f"ch{i}" for i in range(c)]

    def figures(self) -> list:
        if "show_signal" not in self.arrays:
            return []
        figs = [self._traces(m) for m in self.methods[:1]]
        if len(self.methods) > 1:
            figs.append(self._map_grid())
        for fig in (self._topomaps(), self._scores(), self._bands(), self._filters(), self._loso(), self._bn()):
            if fig is not None:
                figs.append(fig)
        return figs

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
        title = (f"{LABELS[method]} over the traces of {self.info.get('window_id', k)} — "
                 + ", ".join(f"P({n})={p[j]:.2f}" for j, n in enumerate(cls[: len(p)]))
                 + (" — dashed: planted alpha bursts" if mask is not None and mask.any() else ""))
        fig.update_yaxes(tickvals=list(range(c)), ticktext=names, autorange="reversed", title="channel")
        fig.update_xaxes(title="time (s)")
        fig.update_layout(title=title, height=720, margin={"l": 60, "r": 20, "t": 60, "b": 40})
        return fig

    def _map_grid(self) -> go.Figure:
        panels = [(LABELS[m], self.arrays[f"show_{m}"], m == "cam") for m in self.methods]
        if "random_cam_example" in self.arrays and self.info.get("random_example_window") == self.info.get("window"):
            panels.append(("CAM of a re-initialized model", self.arrays["random_cam_example"], True))
        sig = self.arrays["show_signal"]
        names, time = self._channels(sig.shape[0]), np.arange(sig.shape[1]) / float(self.info.get("sfreq", 128.0))
        fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], shared_yaxes=True,
                            horizontal_spacing=0.03)
        for j, (_, arr, cam) in enumerate(panels):
            z = _norm(arr) if cam else arr / max(float(np.abs(arr).max()), 1e-30)
            fig.add_trace(go.Heatmap(z=z, x=time, y=names, zmin=-1, zmax=1, colorscale="Viridis" if cam
                                     else "RdBu_r", showscale=False), 1, j + 1)
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(title="The same window by each method (CAM: mean/RMS scale; LRP, IG: signed, scaled by "
                                "max |value|)", height=560, margin={"l": 60, "r": 20, "t": 70, "b": 40})
        return fig

    def _topomaps(self) -> go.Figure | None:
        ms = [m for m in self.methods if f"topo_{m}" in self.arrays]
        if not ms or "topo_xy" not in self.arrays:
            return None
        xy, axis, inside = self.arrays["topo_xy"], self.arrays["topo_axis"], self.arrays["topo_inside"]
        names = self._channels(len(xy))
        fig = make_subplots(rows=1, cols=len(ms), subplot_titles=[LABELS[m] for m in ms], horizontal_spacing=0.04)
        r = float(np.abs(axis).max())
        ring = np.linspace(0, 2 * np.pi, 121)
        for j, m in enumerate(ms):
            grid = self.arrays[f"topo_{m}"]
            peak = max(float(grid[inside].max()), 1e-30)
            z = np.where(inside, grid / peak, np.nan)  # display only: blank outside the head
            fig.add_trace(go.Contour(z=z, x=axis, y=axis, colorscale="Viridis", zmin=0, zmax=1, ncontours=14,
                                     showscale=j == len(ms) - 1, colorbar={"title": "of peak"},
                                     line={"width": 0.4}), 1, j + 1)
            fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers+text", text=names,
                                     textfont={"size": 9, "color": "white"}, textposition="top center",
                                     marker={"color": "white", "size": 4, "line": {"color": "black", "width": 1}},
                                     showlegend=False, hovertext=[f"{n}: {v:.3f}" for n, v in zip(
                                         names, self.arrays[f"channel_relevance_{m}"], strict=True)]), 1, j + 1)
            fig.add_trace(go.Scatter(x=r * np.cos(ring), y=r * np.sin(ring), mode="lines", showlegend=False,
                                     line={"color": "black"}, hoverinfo="skip"), 1, j + 1)
            fig.add_trace(go.Scatter(x=[-0.12 * r, 0, 0.12 * r], y=[r, 1.1 * r, r], mode="lines", showlegend=False,
                                     line={"color": "black"}, hoverinfo="skip"), 1, j + 1)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False, scaleanchor="x")
        fig.update_layout(title="Scalp topomaps: share of |relevance| per channel, each map scaled to its peak "
                                "(colin27 10-20 positions, nose up)",
                          height=420, margin={"l": 10, "r": 10, "t": 70, "b": 10})
        return fig

    # -- numbers -----------------------------------------------------------------------------------
    def _scores(self) -> go.Figure | None:
        rows = [("CAM variant", "saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game")]
        rows += [(LABELS[m].split(" (")[0], f"{m}_mass_in_bursts", f"{m}_posterior_share", f"{m}_pointing_game")
                 for m in ("lrp", "ig")]
        rows += [("randomized model (CAM)", "randomized_mass_in_bursts", "randomized_posterior_share",
                  "randomized_pointing_game"),
                 ("other class (CAM)", "other_class_mass_in_bursts", "other_class_posterior_share",
                  "other_class_pointing_game")]
        rows = [r for r in rows if r[1] in self.metrics]
        if not rows:
            return None
        fig = go.Figure()
        for k, title in enumerate(("mass in bursts", "posterior share", "pointing game")):
            vals = [self.metrics[r[k + 1]] for r in rows]
            fig.add_trace(go.Bar(name=title, x=[r[0] for r in rows], y=vals, text=[f"{v:.2f}" for v in vals]))
        for v, name in ((self.metrics.get("chance_mass_in_bursts"), "chance: mass"),
                        (self.metrics.get("chance_posterior_share"), "chance: posterior")):
            if v is not None:
                fig.add_hline(y=v, line_dash="dot", annotation_text=f"{name} {v:.2f}")
        fig.add_hline(y=0.8, line_dash="dash", line_color="crimson", annotation_text="mass target 0.8")
        fig.update_layout(barmode="group", title=f"Planted truth: {int(self.metrics.get('n_evaluated', 0))} correctly "
                          "classified drowsy windows", yaxis={"range": [0, 1.05]}, height=420)
        return fig

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

    def summary(self) -> str:
        m = self.metrics
        parts = [f"{int(m.get('n_windows', 0))} windows analysed"
                 + (f", accuracy {m['accuracy']:.3f}" if "accuracy" in m else "") + "."]
        if "saliency_mass_in_bursts" in m:
            parts.append(f"CAM variant on {int(m.get('n_evaluated', 0))} correct drowsy windows: "
                         f"{m['saliency_mass_in_bursts']:.2f} of the map inside the planted bursts (chance "
                         f"{m.get('chance_mass_in_bursts', 0):.2f}), {m['saliency_posterior_share']:.2f} on posterior "
                         f"channels (chance {m.get('chance_posterior_share', 0):.2f}), pointing game "
                         f"{m['pointing_game']:.2f}; a re-initialized model scores "
                         f"{m.get('randomized_mass_in_bursts', 0):.2f} inside the bursts.")
        elif not self.info.get("has_truth"):
            parts.append("No planted truth for these windows, so the ground-truth checks are skipped.")
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
