"""The attribution result: renders heat maps, top-5 and the sanity check from stored arrays."""

from __future__ import annotations

import numpy as np

from analyzers._shared.quality_figure import quality_figures
from analyzers.attribution.signal_figures import row_titles, signal_grid
from workbench.core.plots import bars, overlay_grid
from workbench.core.result import Result

METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "grad_cam", "occlusion")
SIGNED = {"integrated_gradients": True, "saliency": False, "input_x_gradient": True,
          "grad_cam": False, "occlusion": True}
LABELS = {"integrated_gradients": "Integrated Gradients", "saliency": "Saliency |grad|",
          "input_x_gradient": "Input x Gradient", "grad_cam": "Grad-CAM", "occlusion": "Occlusion"}
MAX_ROWS = 4


class AttributionResult(Result):
    """Arrays: ``input_display`` (N, H, W, 3), ``attr_<method>`` (N, H, W), ``rand_<method>``,
    ``probs`` (N, classes), ``target`` (N,), ``completeness_gap`` (N,). A signal model's: ``input_display``
    (N, C, T) and maps (N, T), with ``info["sampling_rate"]`` (Hz or None) and, on a pitch model,
    ``info["pitch_hz"]`` (N,) (signal_figures.py draws them)."""

    @property
    def is_signal(self) -> bool:
        return np.asarray(self.arrays.get("input_display", np.zeros((0, 1, 1, 3)))).ndim == 3

    @property
    def methods(self) -> list[str]:
        return [m for m in self.info.get("methods", []) if f"attr_{m}" in self.arrays]

    def _row_titles(self, n: int) -> list[str]:
        ids, names = self.info.get("ids", []), self.info.get("target_names", [])
        tgt, probs = self.arrays["target"], self.arrays["probs"]
        return [f"{ids[i] if i < len(ids) else i}: {names[i] if i < len(names) else int(tgt[i])} "
                f"(p={probs[i, int(tgt[i])]:.2f})" for i in range(n)]

    def figures(self) -> list:
        if "input_display" not in self.arrays:
            return []
        n = min(MAX_ROWS, self.arrays["input_display"].shape[0])
        maps = [(LABELS[m], self.arrays[f"attr_{m}"][:n], SIGNED[m]) for m in self.methods]
        untrained = "" if self.info.get("trained", True) else " — UNTRAINED model (random weights)"
        if self.is_signal:
            return self._signal_figures(n, maps, untrained)
        figs = [overlay_grid(self.arrays["input_display"][:n], maps, self._row_titles(n),
                             f"Attribution maps for the explained class{untrained}")]
        figs.append(self._top5())
        rand = [m for m in self.methods if f"rand_{m}" in self.arrays]
        if rand:
            figs.append(self._sanity_bars(rand))
            img = np.repeat(self.arrays["input_display"][:1], 2, axis=0)
            both = [(LABELS[m], np.concatenate([self.arrays[f"attr_{m}"][:1], self.arrays[f"rand_{m}"][:1]]),
                     SIGNED[m]) for m in rand]
            k = int(self.metrics.get("randomized_layers", 0))
            figs.append(overlay_grid(img, both, ["trained model", f"randomized ({k} layers)"],
                                     "Trained vs randomized model: a faithful map must change"))
        figs += quality_figures(self.arrays, self.info, LABELS)
        return figs

    def _top5(self):
        probs = self.arrays["probs"][0]
        order = np.argsort(-probs)[:5]
        names = self.info.get("class_names_top5", [[str(int(j)) for j in order]])[0]
        labels = [f"{nm} ({int(j)})" for nm, j in zip(names, order, strict=False)]
        return bars(labels, [float(probs[j]) for j in order],
                    f"Top-5 prediction for {self.info.get('ids', ['input'])[0]}", xlabel="probability")

    def _sanity_bars(self, rand: list[str]):
        rhos = [self.metrics.get(f"sanity_rank_corr_{m}", float("nan")) for m in rand]
        return bars([LABELS[m] for m in rand], rhos, "Sanity check: rank correlation with the map of a randomized "
                    "model (must fall below the threshold)", threshold=0.5, xlabel="Spearman rho of |map|")

    def _signal_figures(self, n: int, maps: list, untrained: str) -> list:
        """The 1-D counterparts of the picture figures: the signal with one band per method, the top-5, and
        the trained vs randomized bands of the first sample."""
        disp, fs = np.asarray(self.arrays["input_display"]), self.info.get("sampling_rate")
        pitch = self.info.get("pitch_hz") or []
        head = f"predicted pitch {pitch[0]:.1f} Hz; " if pitch else ""
        figs = [signal_grid(disp[:n], maps, row_titles(self.info, self.arrays, n),
                            f"Attribution over time ({head}explained class){untrained}", fs), self._top5()]
        rand = [m for m in self.methods if f"rand_{m}" in self.arrays]
        if rand:
            figs.append(self._sanity_bars(rand))
            k = int(self.metrics.get("randomized_layers", 0))
            both = [(f"{LABELS[m]}, {who}", self.arrays[f"{key}_{m}"][:1], SIGNED[m])
                    for m in rand for who, key in (("trained", "attr"), (f"randomized ({k} layers)", "rand"))]
            figs.append(signal_grid(disp[:1], both, row_titles(self.info, self.arrays, 1),
                                    "Trained vs randomized model: a faithful map must change", fs))
        return figs + quality_figures(self.arrays, self.info, LABELS)

    def summary(self) -> str:
        names = self.info.get("target_names", ["?"])
        parts = [f"Explained class '{names[0]}' with p={self.metrics.get('target_prob', float('nan')):.3f} "
                 f"using {', '.join(LABELS[m] for m in self.methods)}."]
        if "completeness_gap" in self.metrics:
            parts.append(f"IG completeness gap {100 * self.metrics['completeness_gap']:.3f}% "
                         "(sum of attributions vs f(x) - f(baseline)).")
        for m in self.methods:
            rho = self.metrics.get(f"sanity_rank_corr_{m}")
            if rho is not None:
                verdict = "passes" if rho < 0.5 else "FAILS"
                parts.append(f"{LABELS[m]} {verdict} the randomization test (rho={rho:.2f}).")
        for m in self.methods:
            margin = self.metrics.get(f"quality_margin_{m}")
            if margin is not None:
                parts.append(f"{LABELS[m]} {'beats' if margin > 0 else 'does NOT beat'} a random map on deletion "
                             f"and insertion (smaller AUC margin {margin:+.3f}).")
        if not self.info.get("trained", True):
            parts.append("The model is untrained (seeded random weights): maps reflect architecture only.")
        return " ".join(parts)
