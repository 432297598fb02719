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
NORM_LABELS = {"per_layer": "per-layer L1/L2", "image": "authors' image setting", "none": "no normalization"}
TIE = 0.01  # accuracy within one point of random = "matches random" (a few test points on the toy's 500)


def split_key(key: str, series: dict | None = None) -> tuple[str, str | None]:
    """(criterion, normalization or None) of a series key; without ``series`` (the live view) from the
    ``<criterion>_<normalization>`` naming."""
    if series and key in series:
        return tuple(series[key])
    crit, _, norm = key.rpartition("_")
    return (crit, norm) if crit in LABELS and norm in NORM_LABELS else (key, None)


def series_label(key: str, series: dict | None = None) -> str:
    """Legend name of a curve: the criterion, plus its normalization when it is not the run's first."""
    crit, norm = split_key(key, series)
    base = LABELS.get(crit, esc(crit))
    return base if key == crit or norm is None else f"{base} [{NORM_LABELS.get(norm, esc(norm))}]"


def rate_key(rate: float) -> str:
    """Metric suffix of a rate in percent: 30 -> "30", 33.3 -> "33p3"."""
    return f"{rate:g}".replace(".", "p")


def curves_figure(rates: list[float], acc: dict[str, list[float]], title: str = "",
                  series: dict | None = None) -> go.Figure:
    """Accuracy (0..1) vs pruning rate (percent), one line per series (criterion, or criterion under a
    further normalization: ``series[key] = (criterion, normalization)``, drawn dashed); ``acc[c]`` may be
    shorter than ``rates`` while a run is still going (the live view)."""
    fig = go.Figure()
    for key, ys in acc.items():
        crit = split_key(key, series)[0]
        dash = "dot" if crit == "lrp_inverted" else ("dash" if key != crit else None)
        fig.add_trace(go.Scatter(x=list(rates[:len(ys)]), y=[100 * v for v in ys], mode="lines+markers",
                                 name=series_label(key, series), line={"color": COLORS.get(crit)},
                                 line_dash=dash))
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
    def title(self) -> str:
        """"lrp_pruning · <model> · <criteria>": the run reads its own training data (no data id), so the base
        title's last part would be empty and leave a dangling "·"."""
        crits = self.criteria
        what = ", ".join(crits) if len(crits) <= 3 else f"{len(crits)} criteria"
        parts = [self.analyzer, self.model, self.data or what]
        return " · ".join(p for p in parts if p)

    @property
    def criteria(self) -> list[str]:
        """Series keys in run order (a criterion, or ``<criterion>_<normalization>``)."""
        return list(self.info.get("criteria", []))

    @property
    def series(self) -> dict:
        """key -> (criterion, normalization); empty for results saved before normalizations were series."""
        return {k: tuple(v) for k, v in self.info.get("series", {}).items()}

    def _label(self, key: str) -> str:
        return series_label(key, self.series)

    def _color(self, key: str):
        return COLORS.get(self.series.get(key, (key,))[0])

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
        figs = [curves_figure(rates, {c: self.arrays["acc"][i].tolist() for i, c in enumerate(crits)}, title,
                              self.series)]
        figs.append(self._size_figure(rates, crits))
        figs.append(self._layer_figure(crits))
        figs.append(self._summary_table(crits))
        return figs

    def _size_figure(self, rates, crits) -> go.Figure:
        fig = go.Figure()
        p0, f0 = self.arrays["params"][0, 0], self.arrays["flops"][0, 0]
        for i, c in enumerate(crits):
            fig.add_trace(go.Scatter(x=rates, y=100 * self.arrays["params"][i] / p0, name=f"{self._label(c)} params",
                                     line={"color": self._color(c)}))
            fig.add_trace(go.Scatter(x=rates, y=100 * self.arrays["flops"][i] / f0, name=f"{self._label(c)} FLOPs",
                                     line={"color": self._color(c), "dash": "dash"}))
        fig.update_layout(title="Size of the pruned model (parameters solid, FLOPs dashed; % of the original)",
                          xaxis_title="units pruned (%)", yaxis_title="% of the unpruned model", height=420)
        return fig

    def _layer_figure(self, crits) -> go.Figure:
        layers = self.info.get("layers", [])
        before = self.arrays["units_before"].astype(float)
        fig = go.Figure()
        for i, c in enumerate(crits):
            frac = 1 - self.arrays["units_after"][i] / np.maximum(before, 1)
            fig.add_trace(go.Bar(x=[esc(n) for n in layers], y=100 * frac, name=self._label(c),
                                 marker_color=self._color(c)))
        rate = float(self.arrays["rates"][-1])
        fig.update_layout(title=f"Share of each layer's units removed at {rate:g}% (global ranking)", barmode="group",
                          yaxis_title="% of the layer's units", height=420)
        return fig

    def _summary_table(self, crits) -> go.Figure:
        m, last = self.metrics, float(self.arrays["rates"][-1])
        rows = [["criterion", *[self._label(c) for c in crits]],
                ["area under the curve", *[f"{m.get(f'auc_{c}', float('nan')):.4f}" for c in crits]],
                [f"accuracy at {last:g}%", *[f"{100 * a:.2f}%" for a in self.arrays["acc"][:, -1]]]]
        size = [["kept model", LABELS.get(self.info.get("kept_criterion", ""), "")],
                ["parameters", f"{m.get('params_before', 0):,.0f} -> {m.get('params_after', 0):,.0f}"],
                ["FLOPs / input", f"{m.get('flops_before', 0):,.0f} -> {m.get('flops_after', 0):,.0f}"],
                [f"latency, batch {m.get('latency_batch', 0):.0f} (min of repeats)",
                 f"{m.get('latency_before_ms', 0):.2f} ms -> {m.get('latency_after_ms', 0):.2f} ms"]]
        size_cols = [list(c) for c in zip(*size, strict=True)]
        fig = go.Figure([go.Table(header={"values": [r[0] for r in rows]}, cells={"values": [r[1:] for r in rows]},
                                  domain={"y": [0.5, 1]}),
                         go.Table(header={"values": ["pruned model", ""]}, cells={"values": size_cols},
                                  domain={"y": [0, 0.45]})])
        fig.update_layout(title="Criteria and the pruned model", height=520)
        return fig

    def random_ties(self, key: str) -> list[float]:
        """Rates (percent) at which ``key``'s accuracy is within ``TIE`` of random pruning's."""
        crits = self.criteria
        if "random" not in crits or key not in crits or "acc" not in self.arrays:
            return []
        acc, r = self.arrays["acc"], crits.index("random")
        gap = np.abs(acc[crits.index(key), 1:] - acc[r, 1:])
        return [float(x) for x, g in zip(self.arrays["rates"], gap, strict=True) if g <= TIE]

    def _random_sentence(self) -> str:
        """Says plainly where random pruning does as well as LRP: such rates cannot show the paper's claim."""
        if "lrp" not in self.criteria or "random" not in self.criteria:
            return ""
        ties, rates = self.random_ties("lrp"), self.arrays["rates"].tolist()
        if not ties:
            return "LRP beats random pruning by more than one point at every rate."
        if len(ties) == len(rates):
            return ("Random pruning matches LRP (within one point) at every rate tried, so this model and these "
                    "rates cannot show what the paper shows: the network is redundant enough that any units "
                    "can go.")
        return (f"Random pruning matches LRP (within one point) at {', '.join(f'{t:g}%' for t in ties)}; "
                "only the other rates separate the criteria.")

    def _behind_sentence(self) -> str:
        """Rates where LRP (first normalization) is more than one point behind another plain criterion."""
        crits, acc = self.criteria, self.arrays.get("acc")
        if "lrp" not in crits or acc is None:
            return ""
        mine, out = acc[crits.index("lrp"), 1:], []
        for rate_i, rate in enumerate(self.arrays["rates"].tolist()):
            ahead = [f"{LABELS[c]} {100 * acc[i, rate_i + 1]:.1f}%" for i, c in enumerate(crits)
                     if c in LABELS and c not in ("lrp", "lrp_inverted") and acc[i, rate_i + 1] > mine[rate_i] + TIE]
            if ahead:
                out.append(f"at {rate:g}% (LRP {100 * mine[rate_i]:.1f}% vs {', '.join(ahead)})")
        return f"LRP trails {'; '.join(out)}." if out else ""

    def _norm_sentence(self) -> str:
        m, extra = self.metrics, [k for k in self.criteria if self.series.get(k, (k,))[0] != k]
        if not extra:
            return ""
        return "Normalization: " + "; ".join(
            f"{LABELS.get(self.series[k][0], k)} AUC {m.get(f'auc_{self.series[k][0]}', float('nan')):.3f} "
            f"({NORM_LABELS.get(self.info.get('normalize', ['?'])[0], '?')}) vs {m.get(f'auc_{k}', float('nan')):.3f} "
            f"({NORM_LABELS.get(self.series[k][1], k)})" for k in extra) + "."

    def summary(self) -> str:
        m, crits = self.metrics, self.criteria
        if not crits:
            return ""
        rate = float(self.arrays["rates"][-1]) if "rates" in self.arrays else 0.0
        best = max(crits, key=lambda c: m.get(f"auc_{c}", -1))
        parts = [f"Unpruned test accuracy {100 * m.get('acc_unpruned', 0):.1f}%. At {rate:g}% of the units pruned "
                 f"({'with' if self.info.get('finetune') else 'without'} fine-tuning): "
                 + ", ".join(f"{self._label(c)} {100 * m.get(f'acc_{c}_at_{rate_key(rate)}', 0):.1f}%"
                             for c in crits) + f". Best area under the curve: {self._label(best)}."]
        parts += [self._random_sentence(), self._behind_sentence(), self._norm_sentence()]
        parts.append(f"The kept {LABELS.get(self.info.get('kept_criterion', ''), '')} model has "
                     f"{m.get('params_after', 0):,.0f} of {m.get('params_before', 0):,.0f} parameters and "
                     f"{m.get('flops_after', 0) / max(m.get('flops_before', 1), 1):.1%} of the FLOPs; latency "
                     f"{m.get('latency_before_ms', 0):.2f} -> {m.get('latency_after_ms', 0):.2f} ms at batch "
                     f"{m.get('latency_batch', 0):.0f} (minimum of repeated timings).")
        return " ".join(p for p in parts if p)
