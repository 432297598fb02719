"""The channel_stats result: figures from the stored arrays only (no torch).

Arrays (K = channels of all studied BatchNorm layers, concatenated in layer order):
``z`` (K,) float64 standardized mean shift; ``log_scale`` (K,) float64 ln(batch std / running std);
``layer`` (K,) int32 index into ``info["layers"]``; with the control also ``control_z`` and
``control_log_scale`` (K,) float64.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.core.plots import esc
from workbench.core.result import Result

DATA, CONTROL = "#1f77b4", "#999999"


class ChannelStatsResult(Result):
    @property
    def layers(self) -> list[str]:
        return list(self.info.get("layers", []))

    def _per_layer(self, values: np.ndarray) -> list[float]:
        layer = self.arrays["layer"]
        return [float(np.median(np.abs(values[layer == j]))) for j in range(len(self.layers))]

    def layer_figure(self) -> go.Figure:
        """Median |z| per BatchNorm layer, the data beside the control, against the threshold."""
        names = [esc(n) for n in self.layers]
        fig = go.Figure(go.Bar(x=names, y=self._per_layer(self.arrays["z"]), name="your data",
                               marker_color=DATA))
        if "control_z" in self.arrays:
            fig.add_bar(x=names, y=self._per_layer(self.arrays["control_z"]), name="control (re-initialized)",
                        marker_color=CONTROL)
        limit = self.config.get("max_shift")
        if limit is not None:
            fig.add_hline(y=float(limit), line_dash="dash", annotation_text=f"threshold {float(limit):g}")
        fig.update_layout(title="Median |standardized mean shift| per BatchNorm layer", barmode="group",
                          yaxis_title="median |z|", xaxis_title="layer (input of)", height=420)
        return fig

    def channel_figure(self) -> go.Figure:
        """Every channel: standardized mean shift against ln scale ratio; (0, 0) = the training statistics."""
        layer = self.arrays["layer"]
        text = [esc(f"{self.layers[j]} ch {k}") for j, k in zip(layer, _channel_numbers(layer), strict=True)]
        fig = go.Figure()
        if "control_z" in self.arrays:
            fig.add_scatter(x=self.arrays["control_z"], y=self.arrays["control_log_scale"], mode="markers",
                            name="control (re-initialized)", text=text, marker={"color": CONTROL, "size": 5})
        fig.add_scatter(x=self.arrays["z"], y=self.arrays["log_scale"], mode="markers", name="your data",
                        text=text, marker={"color": DATA, "size": 6})
        fig.update_layout(title="Each channel against its training statistics", height=460,
                          xaxis_title="z = (batch mean - running mean) / running std",
                          yaxis_title="ln(batch std / running std)")
        return fig

    def figures(self) -> list:
        return [self.layer_figure(), self.channel_figure()] if "z" in self.arrays else []

    def summary(self) -> str:
        if "median_abs_shift" not in self.metrics:
            return ""
        m = self.metrics
        text = (f"{int(m['channels'])} channels in {len(self.layers)} BatchNorm layers over {int(m['samples'])} "
                f"inputs: median |z| {m['median_abs_shift']:.3f}, median |ln scale| "
                f"{m['median_abs_log_scale']:.3f}.")
        if "control_median_abs_shift" in m:
            text += f" The re-initialized control gives median |z| {m['control_median_abs_shift']:.3f}."
        return text


def _channel_numbers(layer: np.ndarray) -> np.ndarray:
    """Channel index within its layer for each entry of the concatenated (K,) arrays."""
    out = np.zeros_like(layer)
    for j in np.unique(layer):
        sel = layer == j
        out[sel] = np.arange(int(sel.sum()))
    return out
