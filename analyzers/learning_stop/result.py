"""The learning-stop result: per-layer statistic curves, the change heat map, loss/accuracy/lr curves
with every criterion's stop marker, the comparison table, and an overlay of several runs.
Figures are built from stored arrays only (no torch), so a partial result published during
training renders the same way as the final one.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.result import Result

CRITERIA = ("per_layer", "sum", "relative", "patience", "plateau")
LABELS = {"per_layer": "stop rule, paper's code (every layer unchanged)",
          "sum": "stop rule, paper's text (sum of changes zero)",
          "relative": "stop rule, relative tolerance",
          "patience": "validation patience (baseline)",
          "plateau": "train-loss plateau (baseline)"}
COLORS = {"per_layer": "#d62728", "sum": "#ff7f0e", "relative": "#9467bd", "patience": "#2ca02c",
          "plateau": "#8c564b"}
MAX_LAYER_ROWS = 8
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
OVERLAY_KEYS = ("test_acc", "train_loss", "mu", "stops")


def _markers(fig: go.Figure, stops: np.ndarray, rows: list[int] | None = None) -> None:
    """Dashed vertical line per fired criterion (stops: (len(CRITERIA),) epochs, 0 = not fired)."""
    for key, e in zip(CRITERIA, stops, strict=False):
        if e <= 0:
            continue
        for r in rows or [None]:
            kw = {"row": r, "col": 1} if r else {}
            fig.add_vline(x=float(e), line_dash="dash", line_color=COLORS[key], line_width=1.5, **kw)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{LABELS[key]}: epoch {int(e)}",
                                 line={"color": COLORS[key], "dash": "dash"}))


class LearningStopResult(Result):
    """Arrays (E epochs trained, L monitored layers, S stored steps): ``mu`` (E, L) per-epoch mean of
    each layer's output std; ``delta`` (E, L) int64 rounded changes in units of 10**-precision;
    ``alpha`` (S, L) float32 per-step stds at ``alpha_pos`` (S,) (epochs); ``train_loss``,
    ``val_loss``, ``test_loss`` (E,) nats; ``train_acc``, ``val_acc``, ``test_acc`` (E,) in [0, 1];
    ``lr`` (E,); ``epoch_time`` (E,) s; ``stops`` (5,) first firing epoch per criterion (0 = none);
    ``precision_sweep`` (2, P) [precision, stop epoch]; ``overhead_times`` (2, pairs) s per step
    without / with the monitor. An overlay result (``info["overlay"]``) holds ``r<i>_<name>`` arrays."""

    # -- figures -------------------------------------------------------------------------------
    def figures(self) -> list:
        if self.info.get("overlay"):
            return self._overlay_figures()
        if self.arrays.get("mu") is None or self.arrays["mu"].shape[0] == 0:
            return []
        return [self.stats_figure(), self.training_figure(), self.table_figure(), self.delta_figure(),
                self.precision_figure(), self.overhead_figure()]

    def live_figures(self) -> list:
        """What a page shows while training runs (same arrays, fewer figures)."""
        if self.arrays.get("mu") is None or self.arrays["mu"].shape[0] == 0:
            return []
        return [self.stats_figure(), self.training_figure()]

    def _epochs(self) -> np.ndarray:
        return np.arange(1, self.arrays["mu"].shape[0] + 1)

    def stats_figure(self) -> go.Figure:
        mu, alpha, pos = self.arrays["mu"], self.arrays["alpha"], self.arrays["alpha_pos"]
        names = self.info.get("layers", [f"layer {i}" for i in range(mu.shape[1])])[:MAX_LAYER_ROWS]
        p = int(self.info.get("precision", 2))
        rows = len(names)
        fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03, subplot_titles=names)
        for i in range(rows):
            fig.add_trace(go.Scatter(x=pos, y=alpha[:, i], mode="lines", line={"width": 1, "color": "#9ecae1"},
                                     name="std every step", showlegend=i == 0, legendgroup="a"), i + 1, 1)
            steps = np.round(mu[:, i], p)  # epoch e's mean spans (e-1, e]
            fig.add_trace(go.Scatter(x=np.r_[0, self._epochs()], y=np.r_[steps[:1], steps], mode="lines",
                                     line={"shape": "vh", "color": "#08306b"},
                                     name=f"epoch mean, rounded to {p} decimals", showlegend=i == 0,
                                     legendgroup="m"), i + 1, 1)
        _markers(fig, self.arrays["stops"], list(range(1, rows + 1)))
        fig.update_xaxes(title="epoch", row=rows, col=1)
        fig.update_layout(title="Output std of each monitored layer: every training step and the per-epoch mean",
                          height=120 + 170 * rows, margin={"l": 10, "r": 10, "t": 70, "b": 40})
        return fig

    def training_figure(self) -> go.Figure:
        a, x = self.arrays, self._epochs()
        fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.4, 0.4, 0.2],
                            subplot_titles=["loss (nats)", "accuracy", "learning rate"])
        for k, dash in (("train_loss", None), ("val_loss", "dot"), ("test_loss", "dash")):
            fig.add_trace(go.Scatter(x=x, y=a[k], name=k.replace("_", " "), line={"dash": dash}), 1, 1)
        for k, dash in (("train_acc", None), ("val_acc", "dot"), ("test_acc", "dash")):
            fig.add_trace(go.Scatter(x=x, y=a[k], name=k.replace("_", " "), line={"dash": dash}), 2, 1)
        fig.add_trace(go.Scatter(x=x, y=a["lr"], name="learning rate", line={"shape": "hv", "color": "gray"}),
                      3, 1)
        fig.update_yaxes(type="log", row=1, col=1)
        if np.all(a["lr"] > 0):
            fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=3, col=1)
        _markers(fig, a["stops"], [1, 2, 3])
        fig.update_xaxes(title="epoch", row=3, col=1)
        fig.update_layout(title="Training curves with the epoch at which each criterion stops", height=620,
                          margin={"l": 10, "r": 10, "t": 70, "b": 40})
        return fig

    def criteria_rows(self) -> list[dict]:
        """One row per criterion: name, fired, stop epoch, accuracy at stop and at the end, saved %."""
        m = self.metrics
        return [{"criterion": LABELS[k], "fired": bool(m.get(f"{k}_fired", 0)),
                 "stop_epoch": int(m.get(f"{k}_stop_epoch", 0)), "acc_at_stop": m.get(f"{k}_acc", 0.0),
                 "acc_at_end": m.get("acc_at_end", 0.0), "epochs_saved_pct": m.get(f"{k}_saved_pct", 0.0)}
                for k in CRITERIA]

    def table_figure(self) -> go.Figure:
        rows = self.criteria_rows()
        trained = int(self.metrics.get("epochs_trained", 0))
        primary = LABELS.get(self.info.get("primary", ""), "")
        stop = [str(r["stop_epoch"]) if r["fired"] else f"did not fire ({trained} trained)" for r in rows]
        fig = go.Figure(go.Table(
            header={"values": ["criterion", "stop epoch", "test acc at stop", "test acc at end", "epochs saved"],
                    "align": "left"},
            cells={"values": [[("▶ " if r["criterion"] == primary else "") + r["criterion"] for r in rows], stop,
                              [f"{r['acc_at_stop']:.4f}" if r["fired"] else "—" for r in rows],
                              [f"{r['acc_at_end']:.4f}" for r in rows],
                              [f"{r['epochs_saved_pct']:.1f} %" if r["fired"] else "—" for r in rows]],
                   "align": "left"}))
        e_max = int(self.metrics.get("max_epochs", 0))
        fig.update_layout(title=f"Criteria compared on the same run (E_max = {e_max}; ▶ = the rule chosen to stop)",
                          height=300, margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return fig

    def delta_figure(self) -> go.Figure:
        d = np.abs(self.arrays["delta"][1:]).T.astype(np.float64)  # (L, E-1)
        names = self.info.get("layers", [str(i) for i in range(d.shape[0])])
        p = int(self.info.get("precision", 2))
        z = np.log10(1.0 + d)
        top = max(float(z.max()), 1e-9) if z.size else 1.0
        scale = [[0.0, "#1a9850"], [min(1e-6, 0.5), "#1a9850"], [min(2e-6, 0.6), "#fee08b"], [1.0, "#d73027"]]
        fig = go.Figure(go.Heatmap(z=z, x=self._epochs()[1:], y=names, zmin=0, zmax=top, colorscale=scale,
                                   customdata=d, colorbar={"title": "log10(1+|δ|)"},
                                   hovertemplate="epoch %{x}<br>%{y}<br>|δ| = %{customdata} × 1e-" + str(p)
                                   + "<extra></extra>"))
        _markers(fig, self.arrays["stops"])
        fig.update_layout(title=f"|δ|: change of the rounded epoch mean (units of 1e-{p}); green = unchanged",
                          xaxis_title="epoch", height=260 + 40 * len(names),
                          legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
                          margin={"l": 10, "r": 10, "t": 60, "b": 40})
        fig.update_yaxes(automargin=True, autorange="reversed")
        return fig

    def precision_figure(self) -> go.Figure:
        p, e = self.arrays["precision_sweep"]
        trained = int(self.metrics.get("epochs_trained", 0))
        fig = go.Figure(go.Bar(x=[f"p = {int(q)}" for q in p], y=[int(v) if v else trained for v in e],
                               marker_color=["#1f77b4" if v else "#cccccc" for v in e],
                               text=[str(int(v)) if v else "no stop" for v in e], textposition="outside"))
        fig.update_layout(title="Stop epoch by rounding precision (the rule's real hyperparameter); grey = "
                                "did not fire", yaxis_title="epoch", height=340,
                          margin={"l": 10, "r": 10, "t": 60, "b": 40})
        return fig

    def overhead_figure(self) -> go.Figure:
        t = 1e3 * self.arrays["overhead_times"]
        fig = go.Figure([go.Box(y=t[0], name="without monitor"), go.Box(y=t[1], name="with monitor")])
        fig.update_layout(title=f"Training-step time, same model and batch (monitor overhead "
                                f"{self.metrics.get('monitor_overhead_pct', 0.0):+.1f} %)",
                          yaxis_title="ms per step", height=340, margin={"l": 10, "r": 10, "t": 60, "b": 40})
        return fig

    # -- several runs --------------------------------------------------------------------------
    def run_label(self) -> str:
        c = self.config
        return (f"{self.model} {c.get('network', '')} {c.get('optimizer', '')} lr={c.get('lr', '')} "
                f"seed={self.info.get('seed', '')}")

    @classmethod
    def overlay(cls, results: list[LearningStopResult]) -> LearningStopResult:
        """One result holding several runs' curves (copied arrays), rendered on shared axes."""
        arrays, rows = {}, []
        for i, r in enumerate(results):
            for k in OVERLAY_KEYS:
                arrays[f"r{i}_{k}"] = r.arrays[k]
            rows.append({"label": r.run_label(), **{k: r.metrics.get(k, 0.0) for k in (
                "stop_epoch", "stop_fired", "acc_at_stop", "acc_at_end", "epochs_saved_pct",
                "patience_stop_epoch", "patience_fired", "patience_acc")}})
        out = cls("learning_stop", model=",".join(dict.fromkeys(r.model for r in results)), arrays=arrays,
                  info={"overlay": True, "runs": rows})
        out.metrics = {"runs": float(len(results))}
        return out

    def _overlay_figures(self) -> list:
        runs = self.info.get("runs", [])
        acc = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                            subplot_titles=["test accuracy", "train loss (nats)",
                                            "largest relative change of a layer's epoch mean"])
        for i, run in enumerate(runs):
            color, mu = RUN_COLORS[i % len(RUN_COLORS)], self.arrays[f"r{i}_mu"]
            x = np.arange(1, mu.shape[0] + 1)
            change = np.abs(np.diff(mu, axis=0)) / np.maximum(np.abs(mu[:-1]), 1e-12)
            for row, y, xx in ((1, self.arrays[f"r{i}_test_acc"], x), (2, self.arrays[f"r{i}_train_loss"], x),
                               (3, np.maximum(change.max(1), 1e-9), x[1:])):
                acc.add_trace(go.Scatter(x=xx, y=y, name=run["label"], legendgroup=str(i), showlegend=row == 1,
                                         line={"color": color}), row, 1)
            stop = int(self.arrays[f"r{i}_stops"][0]) if run.get("stop_fired") else 0
            if stop:
                for row in (1, 2, 3):
                    acc.add_vline(x=stop, line_dash="dash", line_color=color, row=row, col=1)
        acc.update_yaxes(type="log", row=2, col=1)
        acc.update_yaxes(type="log", row=3, col=1)
        acc.update_xaxes(title="epoch", row=3, col=1)
        acc.update_layout(title="Runs overlaid; dashed lines: each run's learning-stop epoch", height=700,
                          margin={"l": 10, "r": 10, "t": 70, "b": 40})
        table = go.Figure(go.Table(
            header={"values": ["run", "rule stop", "acc at stop", "acc at end", "epochs saved", "patience stop"],
                    "align": "left"},
            cells={"values": [[r["label"] for r in runs],
                              [str(int(r["stop_epoch"])) if r["stop_fired"] else "no stop" for r in runs],
                              [f"{r['acc_at_stop']:.4f}" for r in runs], [f"{r['acc_at_end']:.4f}" for r in runs],
                              [f"{r['epochs_saved_pct']:.1f} %" for r in runs],
                              [str(int(r["patience_stop_epoch"])) if r["patience_fired"] else "no stop" for r in runs]],
                   "align": "left"}))
        table.update_layout(title="Runs compared", height=160 + 30 * len(runs),
                            margin={"l": 10, "r": 10, "t": 60, "b": 10})
        return [acc, table]

    def summary(self) -> str:
        m = self.metrics
        if self.info.get("overlay"):
            return f"{len(self.info.get('runs', []))} learning-stop runs overlaid."
        if not m:
            return ""
        rule = self.info.get("primary", "per_layer")
        trained, e_max = int(m.get("epochs_trained", 0)), int(m.get("max_epochs", 0))
        if m.get("stop_fired"):
            head = (f"The {rule} rule fired at epoch {int(m['stop_epoch'])} of {e_max} "
                    f"({m['epochs_saved_pct']:.1f} % of the epochs saved) with test accuracy {m['acc_at_stop']:.4f}; "
                    f"after {trained} epochs it is {m['acc_at_end']:.4f}.")
        else:
            head = f"The {rule} rule did not fire within {trained} epochs (test accuracy {m['acc_at_end']:.4f})."
        pat = (f"Validation patience stopped at epoch {int(m['patience_stop_epoch'])}."
               if m.get("patience_fired") else "Validation patience did not stop.")
        return (f"{head}  \n{pat}  \nMonitoring {len(self.info.get('layers', []))} layer(s) cost "
                f"{m.get('monitor_overhead_pct', 0.0):+.1f} % per training step.")
