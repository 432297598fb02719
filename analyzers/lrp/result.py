"""The LRP result: heat maps, the conservation ledger (waterfall, layer boundaries, table) and the
randomization check, all drawn from stored arrays."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analyzers._shared.quality_figure import quality_figures
from workbench.core.plots import DIVERGING, bars, esc, overlay_grid, robust_scale
from workbench.core.result import Result

MAX_ROWS = 4
WATERFALL_LAYERS = 12
COMPOSITE_LABELS = {"epsilon_plus_flat": "EpsilonPlusFlat", "epsilon_gamma_box": "EpsilonGammaBox",
                    "epsilon_alpha2_beta1": "EpsilonAlpha2Beta1", "paper": "Yeom et al. (z^B, alpha1-beta0, eps)"}


def notice_figure(title: str, lines: list[str]) -> go.Figure:
    """A figure that says why nothing is drawn (shown in place of a misleading map)."""
    fig = go.Figure()
    text = "<br>".join(esc(line) for line in lines) or "nothing to show"
    fig.add_annotation(text=text, x=0.0, y=0.5, xref="paper", yref="paper", showarrow=False, align="left",
                       xanchor="left",
                       font={"size": 14, "color": "crimson"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=esc(title), height=120 + 24 * max(len(lines), 2))
    return fig


def signal_maps(display: np.ndarray, rel: np.ndarray, titles: list[str], title: str) -> go.Figure:
    """Signals: one row per sample; one channel: the trace with markers coloured by relevance,
    several channels: a channel x time heat map. display, rel: (N, C, T)."""
    n = display.shape[0]
    fig = make_subplots(rows=n, cols=1, subplot_titles=[esc(t) for t in titles], vertical_spacing=0.08)
    for r in range(n):
        z = robust_scale(rel[r])
        if rel.shape[1] == 1:
            fig.add_trace(go.Scatter(y=display[r, 0], mode="lines+markers", line={"color": "#888"},
                                     marker={"color": z[0], "colorscale": DIVERGING, "cmin": -1, "cmax": 1,
                                             "size": 9, "showscale": r == 0},
                                     name="signal", showlegend=False), r + 1, 1)
        else:
            fig.add_trace(go.Heatmap(z=z, zmin=-1, zmax=1, zmid=0, colorscale=DIVERGING, showscale=r == 0),
                          r + 1, 1)
    fig.update_layout(title=esc(title), height=80 + 220 * n, margin={"t": 80})
    return fig


def vector_maps(display: np.ndarray, rel: np.ndarray, titles: list[str], title: str) -> go.Figure:
    """Vectors: relevance of each input feature, one group of bars per sample. display, rel: (N, D)."""
    fig = go.Figure()
    for d in range(rel.shape[1]):
        fig.add_trace(go.Bar(x=[esc(t) for t in titles], y=rel[:, d], name=f"x{d}",
                             text=[f"x{d}={v:.2f}" for v in display[:, d]]))
    fig.update_layout(title=esc(title), barmode="group", yaxis_title="relevance", height=380)
    return fig


class LRPResult(Result):
    """Arrays: ``input_display``, ``relevance`` (images (N, H, W), signals (N, C, T), vectors (N, D)),
    ``rand_relevance``, ``logits`` (N, K), ``target`` (N,), ledger ``ledger_r_out``/``ledger_r_in``/
    ``ledger_gap`` (L, N), ``explained_logit``/``input_relevance``/``absorbed_total``/``leak`` (N,)."""

    def _titles(self, n: int) -> list[str]:
        ids, names = self.info.get("ids", []), self.info.get("target_names", [])
        share = self.arrays["input_relevance"] / np.maximum(np.abs(self.arrays["explained_logit"]), 1e-12)
        return [f"{ids[i] if i < len(ids) else i}: {names[i] if i < len(names) else '?'} "
                f"(input share {share[i]:.0%})" for i in range(n)]

    def map_figure(self) -> go.Figure:
        kind = self.info.get("kind", "image2d")
        n = min(MAX_ROWS, self.arrays["relevance"].shape[0])
        comp = COMPOSITE_LABELS.get(self.info.get("composite", ""), self.info.get("composite", ""))
        reason = self.info.get("no_map_reason", "")
        if reason:
            return notice_figure(f"No heat map for {self.model}",
                                 [*reason.split(": ", 1), f"ledger closure error "
                                  f"{self.metrics.get('conservation_rel_error', 0):.2e} (see the ledger below)"])
        rel, disp, titles = self.arrays["relevance"][:n], self.arrays["input_display"][:n], self._titles(n)
        title = f"LRP relevance for the explained class ({comp})"
        if not self.info.get("trained", True):
            title += " - UNTRAINED model"
        if kind == "image2d":
            maps = [("LRP (signed)", rel, True), ("positive", np.clip(rel, 0, None), False),
                    ("negative", np.clip(-rel, 0, None), False)]
            return overlay_grid(disp, maps, titles, title)
        if kind == "vector":
            return vector_maps(disp, rel, titles, title)
        return signal_maps(disp, rel, titles, title)

    def waterfall(self, i: int = 0) -> go.Figure:
        """Sample ``i``: logit -> minus what each layer absorbed -> minus the leak -> input relevance."""
        calls = self.info.get("ledger_calls", [])
        absorbed = self.arrays["ledger_r_out"][:, i] - self.arrays["ledger_r_in"][:, i]
        order = [j for j in np.argsort(-np.abs(absorbed))[:WATERFALL_LAYERS] if abs(absorbed[j]) > 0]
        order = sorted(order, reverse=True)  # backward order: output layers first
        rest = float(absorbed.sum() - absorbed[order].sum()) if order else float(absorbed.sum())
        labels = ["explained logit"] + [esc(calls[j]) for j in order] + ["other layers", "outside the rules (leak)",
                                                                          "input relevance"]
        values = [float(self.arrays["explained_logit"][i])] + [-float(absorbed[j]) for j in order] + \
                 [-rest, -float(self.arrays["leak"][i]), float(self.arrays["input_relevance"][i])]
        measure = ["absolute"] + ["relative"] * (len(values) - 2) + ["total"]
        fig = go.Figure(go.Waterfall(x=labels, y=values, measure=measure, text=[f"{v:+.3g}" for v in values],
                                     connector={"line": {"color": "#999"}}))
        fig.update_layout(title="Conservation ledger: the explained logit, what each layer absorbed (biases, "
                                "stabilizers), and the relevance left at the input", height=460,
                          yaxis_title="relevance", margin={"b": 140})
        return fig

    def boundary_figure(self) -> go.Figure:
        """Relevance reaching each layer boundary (fraction of the logit, mean over samples), output first."""
        calls, rules = self.info.get("ledger_calls", []), self.info.get("ledger_rules", [])
        denom = np.maximum(np.abs(self.arrays["explained_logit"]), 1e-12) * np.sign(self.arrays["explained_logit"])
        frac_out = (self.arrays["ledger_r_out"] / denom).mean(1)[::-1]
        frac_abs = ((self.arrays["ledger_r_out"] - self.arrays["ledger_r_in"]) / denom).mean(1)[::-1]
        names = [esc(f"{c} [{r}]") for c, r in zip(calls[::-1], rules[::-1], strict=False)]
        fig = go.Figure([go.Scatter(x=names, y=frac_out, mode="markers", name="relevance at the output"),
                         go.Bar(x=names, y=frac_abs, name="absorbed by the layer", opacity=0.6)])
        fig.add_hline(y=1.0, line_dash="dot", line_color="#777", annotation_text="explained logit")
        fig.update_layout(title="Relevance at each layer boundary (share of the explained logit; output first)",
                          height=440, yaxis_title="share of the logit", margin={"b": 160})
        return fig

    def ledger_table(self, i: int = 0) -> go.Figure:
        calls, rules = self.info.get("ledger_calls", []), self.info.get("ledger_rules", [])
        r_out, r_in = self.arrays["ledger_r_out"][:, i], self.arrays["ledger_r_in"][:, i]
        gap = self.arrays["ledger_gap"][:, i]
        rows = list(range(len(calls)))[::-1]
        cells = [[esc(calls[j]) for j in rows], [esc(rules[j]) for j in rows]] + \
                [[f"{a[j]:.4g}" for j in rows] for a in (r_out, r_in, r_out - r_in, gap)]
        fig = go.Figure(go.Table(header={"values": ["layer", "rule", "relevance out", "relevance in", "absorbed",
                                                    "outside the rules"]}, cells={"values": cells}))
        fig.update_layout(title="Ledger per layer (first sample, output layers first)",
                          height=min(900, 160 + 22 * len(calls)))
        return fig

    def figures(self) -> list:
        if "relevance" not in self.arrays:
            return []
        figs = [self.map_figure(), self.waterfall(), self.boundary_figure(), self.ledger_table()]
        if "rand_relevance" in self.arrays:
            rho = self.metrics.get("sanity_rank_corr", float("nan"))
            figs.append(bars(["LRP"], [rho], "Sanity check: rank correlation with the map of a randomized model "
                                            "(must fall below the threshold)", threshold=0.5,
                             xlabel="Spearman rho of |relevance|"))
            if self.info.get("kind") == "image2d" and not self.info.get("no_map_reason"):
                img = np.repeat(self.arrays["input_display"][:1], 2, axis=0)
                both = np.concatenate([self.arrays["relevance"][:1], self.arrays["rand_relevance"][:1]])
                k = int(self.metrics.get("randomized_layers", 0))
                figs.append(overlay_grid(img, [("LRP", both, True)], ["trained model", f"randomized ({k} layers)"],
                                         "Trained vs randomized model: a faithful map must change"))
        figs += quality_figures(self.arrays, self.info, {"lrp": "LRP"})
        return figs

    def summary(self) -> str:
        names = self.info.get("target_names", ["?"])
        comp = COMPOSITE_LABELS.get(self.info.get("composite", ""), "")
        m = self.metrics
        parts = [f"LRP ({comp}, {self.info.get('dtype', 'float32')}) for class '{names[0]}'."]
        if self.info.get("trustworthy", False):
            parts.append(f"The ledger closes to {m.get('conservation_rel_error', 0):.1e} of the logit: "
                         f"{m.get('input_relevance_fraction', 0):.1%} of it reaches the input and "
                         f"{m.get('bias_absorbed_fraction', 0):.1%} is absorbed by biases and stabilizers.")
            if m.get("input_relevance_fraction", 1.0) < 0.1:
                parts.append("Most of the logit sits in the biases, so the map shows only a small remainder.")
        if self.info.get("no_map_reason"):
            parts.append(f"No heat map is drawn: {self.info['no_map_reason']} "
                         f"(closure error {m.get('conservation_rel_error', 0):.2e}).")
        if "sanity_rank_corr" in m:
            verdict = "passes" if m["sanity_rank_corr"] < 0.5 else "FAILS"
            parts.append(f"The randomization test {verdict} (rho={m['sanity_rank_corr']:.2f}).")
        if "quality_margin_lrp" in m:
            beats = "beats" if m["quality_margin_lrp"] > 0 else "does NOT beat"
            parts.append(f"The map {beats} a random map on deletion and insertion (deletion AUC "
                         f"{m['quality_deletion_auc_lrp']:.3f} vs {m['quality_deletion_auc_random']:.3f}, insertion "
                         f"{m['quality_insertion_auc_lrp']:.3f} vs {m['quality_insertion_auc_random']:.3f}).")
        if not self.info.get("trained", True):
            parts.append("The model is untrained (seeded random weights).")
        return " ".join(parts)
