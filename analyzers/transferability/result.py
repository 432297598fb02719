"""The transferability result: figures and summary from stored arrays only."""

from __future__ import annotations

import numpy as np

from analyzers.transferability import plots as tp
from workbench.core.result import Result


class TransferabilityResult(Result):
    """Arrays: ``cuts`` (K,) int; ``seeds`` (S,) int; ``acc`` / ``acc_mask`` / ``frozen_ok`` (S, 5, K) over
    seeds x (BnB, BnB+, AnB, AnB+, random frozen) x cuts, accuracies in [0, 1]; ``base`` (S, 2) baseA
    (on A) and baseB (on B); ``cka_diag`` / ``svcca_diag`` (S, 5); ``cka_ab`` / ``cka_b_anbp`` (5, 5);
    ``scores`` (3, 2) [LEEP, LogME] per source; ``logme_layers`` (2, 5); optional ``umap_base`` /
    ``umap_transfer`` (N, 2) with ``umap_labels`` (N,); ``paper_acc`` (7, 4) and ``paper_base`` (1,)."""

    @property
    def title(self) -> str:
        return f"{self.analyzer} · {self.data or self.info.get('dataset', '')}"

    def _a(self, name: str) -> np.ndarray:
        return np.asarray(self.arrays[name])

    def figures(self) -> list:
        if "acc" not in self.arrays:
            return []
        cuts, acc, mask, base = self._a("cuts").tolist(), self._a("acc"), self._a("acc_mask"), self._a("base")
        ds = self.info.get("dataset", "")
        title = f"This run: {ds}, A={self.info.get('classes_a', [])} B={self.info.get('classes_b', [])}"
        figs = [tp.accuracy_figure(cuts, acc, mask, base[:, 1], title),
                tp.relative_figure(cuts, acc, mask, base[:, 1]),
                tp.grid_figure(cuts, acc, mask, base)]
        layers = self.info.get("layers", [])
        if "cka_ab" in self.arrays:
            figs.append(tp.cka_figure(self._a("cka_ab"), self._a("cka_b_anbp"), layers,
                                      int(self.info.get("view_cut", 0)), bool(self.info.get("has_anbp", False))))
            figs.append(tp.depth_figure(self._a("cka_diag"), self._a("svcca_diag"), self._a("logme_layers"), layers))
        if "scores" in self.arrays:
            figs.append(tp.scores_figure(self._a("scores"), self.info.get("sources", [])))
        if "umap_base" in self.arrays:
            figs.append(tp.umap_figure(self._a("umap_base"), self._a("umap_transfer"), self._a("umap_labels"),
                                       [str(c) for c in self.info.get("classes_b", [])],
                                       tuple(self.info.get("umap_titles", ["base", "transfer"]))))
        return figs

    @staticmethod
    def live_figures(snapshot: dict) -> list:
        """The partial grid a running job publishes after every cell (``acc``/``mask`` (S, 5, K),
        ``base`` (S, 2), ``cuts``, ``done``/``total``): the cell grid and the accuracy curves so far."""
        acc, mask, base = (np.asarray(snapshot[k]) for k in ("acc", "mask", "base"))
        cuts = list(snapshot["cuts"])
        figs = [tp.grid_figure(cuts, acc, mask, base, title=f"Cells finished: {snapshot['done']} of "
                                                             f"{snapshot['total']} (live)")]
        if mask.sum() > 0:
            done_b = base[:, 1][base[:, 1] > 0]
            figs.append(tp.accuracy_figure(cuts, acc, mask, done_b if done_b.size else base[:, 1], "This run so far"))
        return figs

    def summary(self) -> str:
        m = self.metrics
        cuts = [int(c) for c in self.arrays["cuts"]] if "cuts" in self.arrays else []
        if not cuts:
            return ""

        def row(t: str) -> str:
            return ", ".join(f"{m.get(f'{t}_acc_n{k}', float('nan')):.3f}" for k in cuts)

        # a few short lines (markdown line breaks), the accuracies first
        parts = [f"{self.info.get('dataset', '')}, {len(self.arrays['seeds'])} seed(s): baseB "
                 f"{m.get('base_b_acc', float('nan')):.3f}, baseA {m.get('base_a_acc', float('nan')):.3f}",
                 f"n = {', '.join(map(str, cuts))}: AnB {row('anb')} · AnB+ {row('anb_plus')} · BnB {row('bnb')} · "
                 f"BnB+ {row('bnb_plus')}"]
        if f"random_frozen_acc_n{cuts[-1]}" in m:
            parts[-1] += f" · random frozen {row('random_frozen')}"
        parts.append(self.info.get("data_note", ""))
        if "cka_layer1" in m:
            parts.append(f"Linear CKA baseA vs baseB: {m['cka_layer1']:.2f} at layer 1 -> {m['cka_last']:.2f} at the "
                         "last hidden layer")
        parts.append(self.info.get("coadaptation_note", ""))
        parts.append(f"{int(m.get('cells_trained', 0))} cell(s) trained, {int(m.get('cells_reused', 0))} reused")
        return "  \n".join(p for p in parts if p)
