"""The pruning result: accuracy vs pruning rate per criterion, size and speed of the pruned model,
per-layer pruned fractions; drawn from stored arrays (and, while running, from the live snapshots)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.core.plots import esc
from workbench.core.result import ModelArtifact, Result

LABELS = {"lrp": "LRP", "taylor": "Taylor", "gradient": "gradient", "weight": "weight", "random": "random",
          "lrp_inverted": "LRP inverted (control)"}
COLORS = {"lrp": "#d62728", "taylor": "#1f77b4", "gradient": "#2ca02c", "weight": "#9467bd", "random": "#7f7f7f",
          "lrp_inverted": "#ff7f0e"}
SD_PREFIX = "pruned_sd/"


def rate_key(rate: float) -> str:
    """Metric suffix of a rate in percent: 30 -> "30", 33.3 -> "33p3"."""
    return f"{rate:g}".replace(".", "p")


def curves_figure(rates: list[float], acc: dict[str, list[float]], title: str = "") -> go.Figure:
    """Accuracy (0..1) vs pruning rate (percent), one line per criterion; ``acc[c]`` may be shorter than
    ``rates`` while a run is still going (the live view)."""
    fig = go.Figure()
    for crit, ys in acc.items():
        fig.add_trace(go.Scatter(x=list(rates[:len(ys)]), y=[100 * v for v in ys], mode="lines+markers",
                                 name=LABELS.get(crit, esc(crit)), line={"color": COLORS.get(crit)},
                                 line_dash="dot" if crit == "lrp_inverted" else None))
    fig.update_layout(title=esc(title or "Test accuracy vs share of units pruned"), height=430,
                      xaxis_title="units pruned (% of all prunable units)", yaxis_title="test accuracy (%)")
    return fig


def pruned_state_dict(result: Result) -> dict[str, np.ndarray]:
    """The kept pruned model's state dict (name -> array) stored in the result."""
    return {k[len(SD_PREFIX):]: v for k, v in result.arrays.items() if k.startswith(SD_PREFIX)}


class LRPPruningResult(Result):
    """Arrays: ``rates`` (R,) percent; ``acc`` (C, R + 1) test accuracy with the unpruned model first;
    ``auc`` (C,); ``params``/``flops`` (C, R + 1); ``units_before`` (L,), ``units_after`` (C, L);
    ``pruned_sd/<key>``: the pruned model of ``info["kept_criterion"]`` at the largest rate."""

    @property
    def criteria(self) -> list[str]:
        return list(self.info.get("criteria", []))

    def model_artifact(self) -> ModelArtifact | None:
        """The kept pruned model (narrower layers of ``self.model``'s architecture), labelled
        "<criterion> <largest rate>%"; None when the run kept no model."""
        sd = pruned_state_dict(self)
        if not sd or not self.model:
            return None
        rate = f" {float(self.arrays['rates'][-1]):g}%" if self.arrays.get("rates", np.empty(0)).size else ""
        return ModelArtifact(self.model, sd, f"{self.info.get('kept_criterion', 'pruned')}{rate}")

    def figures(self) -> list:
        if "acc" not in self.arrays:
            return []
        rates = [0.0, *self.arrays["rates"].tolist()]
        crits = self.criteria
        ft = "with" if self.info.get("finetune") else "without"
        title = (f"Test accuracy vs units pruned ({ft} fine-tuning, {self.info.get('reference_samples', '?')} "
                 f"reference samples)")
        figs = [curves_figure(rates, {c: self.arrays["acc"][i].tolist() for i, c in enumerate(crits)}, title)]
        figs.append(self._size_figure(rates, crits))
        figs.append(self._layer_figure(crits))
        figs.append(self._summary_table(crits))
        return figs

    def _size_figure(self, rates, crits) -> go.Figure:
        fig = go.Figure()
        p0, f0 = self.arrays["params"][0, 0], self.arrays["flops"][0, 0]
        for i, c in enumerate(crits):
            fig.add_trace(go.Scatter(x=rates, y=100 * self.arrays["params"][i] / p0, name=f"{LABELS.get(c, c)} params",
                                     line={"color": COLORS.get(c)}))
            fig.add_trace(go.Scatter(x=rates, y=100 * self.arrays["flops"][i] / f0, name=f"{LABELS.get(c, c)} FLOPs",
                                     line={"color": COLORS.get(c), "dash": "dash"}))
        fig.update_layout(title="Size of the pruned model (parameters solid, FLOPs dashed; % of the original)",
                          xaxis_title="units pruned (%)", yaxis_title="% of the unpruned model", height=420)
        return fig

    def _layer_figure(self, crits) -> go.Figure:
        layers = self.info.get("layers", [])
        before = self.arrays["units_before"].astype(float)
        fig = go.Figure()
        for i, c in enumerate(crits):
            frac = 1 - self.arrays["units_after"][i] / np.maximum(before, 1)
            fig.add_trace(go.Bar(x=[esc(n) for n in layers], y=100 * frac, name=LABELS.get(c, c),
                                 marker_color=COLORS.get(c)))
        rate = float(self.arrays["rates"][-1])
        fig.update_layout(title=f"Share of each layer's units removed at {rate:g}% (global ranking)", barmode="group",
                          yaxis_title="% of the layer's units", height=420)
        return fig

    def _summary_table(self, crits) -> go.Figure:
        m, last = self.metrics, float(self.arrays["rates"][-1])
        rows = [["criterion", *[LABELS.get(c, c) for c in crits]],
                ["area under the curve", *[f"{m.get(f'auc_{c}', float('nan')):.4f}" for c in crits]],
                [f"accuracy at {last:g}%", *[f"{100 * a:.2f}%" for a in self.arrays["acc"][:, -1]]]]
        size = [["kept model", LABELS.get(self.info.get("kept_criterion", ""), "")],
                ["parameters", f"{m.get('params_before', 0):,.0f} -> {m.get('params_after', 0):,.0f}"],
                ["FLOPs / input", f"{m.get('flops_before', 0):,.0f} -> {m.get('flops_after', 0):,.0f}"],
                ["CPU latency (batch)",
                 f"{m.get('latency_before_ms', 0):.2f} ms -> {m.get('latency_after_ms', 0):.2f} ms"]]
        size_cols = [list(c) for c in zip(*size, strict=True)]
        fig = go.Figure([go.Table(header={"values": [r[0] for r in rows]}, cells={"values": [r[1:] for r in rows]},
                                  domain={"y": [0.5, 1]}),
                         go.Table(header={"values": ["pruned model", ""]}, cells={"values": size_cols},
                                  domain={"y": [0, 0.45]})])
        fig.update_layout(title="Criteria and the pruned model", height=520)
        return fig

    def summary(self) -> str:
        m, crits = self.metrics, self.criteria
        if not crits:
            return ""
        rate = float(self.arrays["rates"][-1]) if "rates" in self.arrays else 0.0
        best = max(crits, key=lambda c: m.get(f"auc_{c}", -1))
        parts = [f"Unpruned test accuracy {100 * m.get('acc_unpruned', 0):.1f}%. At {rate:g}% of the units pruned "
                 f"({'with' if self.info.get('finetune') else 'without'} fine-tuning): "
                 + ", ".join(f"{LABELS.get(c, c)} {100 * m.get(f'acc_{c}_at_{rate_key(rate)}', 0):.1f}%"
                             for c in crits) + f". Best area under the curve: {LABELS.get(best, best)}."]
        parts.append(f"The kept {LABELS.get(self.info.get('kept_criterion', ''), '')} model has "
                     f"{m.get('params_after', 0):,.0f} of {m.get('params_before', 0):,.0f} parameters and "
                     f"{m.get('flops_after', 0) / max(m.get('flops_before', 1), 1):.0%} of the FLOPs.")
        return " ".join(parts)
