"""The transferability result from a finished grid and its measures: shared by a single call
(analyzer.py) and a call split into sweep cells and merged (split.py), so both build the same Result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analyzers._shared.findings import Findings
from analyzers.transferability import measures as tm
from analyzers.transferability import nets as tn
from analyzers.transferability.checks import checks_and_metrics
from analyzers.transferability.grid import TREATMENTS, GridOutcome, GridSpec
from analyzers.transferability.plots import PAPER_ACC, PAPER_BASE
from analyzers.transferability.result import TransferabilityResult

NAME = "transferability"


@dataclass
class Measured:
    """A finished grid (``out``, over ``spec``) with its measures: ``sim`` (CKA / SVCCA, see
    measures.similarity), ``sc`` (LogME / LEEP, measures.scores), ``views`` (UMAP findings or None) and
    the cut ``view_cut`` they show."""

    spec: GridSpec
    out: GridOutcome
    view_cut: int
    sim: dict
    sc: dict
    views: Findings | None = None


def assemble(config, m: Measured) -> TransferabilityResult:
    """The result of a finished grid and its measures (a single call's and a merged split call's)."""
    spec, out, sim, sc = m.spec, m.out, m.sim, m.sc
    arrays_out = {"cuts": np.array(spec.cuts, np.int64), "seeds": np.array(spec.seeds, np.int64),
                  "acc": out.acc, "acc_mask": out.mask, "base": out.base, "frozen_ok": out.frozen_ok,
                  "cka_diag": sim["cka_diag"], "svcca_diag": sim["svcca_diag"], "cka_ab": sim["cka_ab"],
                  "cka_b_anbp": sim["cka_b_anbp"], "scores": sc["scores"], "logme_layers": sc["logme_layers"],
                  "paper_acc": PAPER_ACC, "paper_base": np.array([PAPER_BASE])}
    info = _info(config, spec, m.view_cut, sim, out)
    if m.views is not None:
        arrays_out.update(m.views.arrays)
        info.update(m.views.info)
    metrics, checks = checks_and_metrics(spec, out, sim, sc, info)
    return TransferabilityResult(NAME, metrics=metrics, checks=checks, arrays=arrays_out, info=info)


def _info(config, spec: GridSpec, view_cut: int, sim: dict, out) -> dict:
    return {"dataset": config.dataset, "classes_a": list(spec.classes_a), "classes_b": list(spec.classes_b),
            "treatments": list(TREATMENTS), "layers": list(tn.LAYER_NAMES), "view_cut": int(view_cut),
            "has_anbp": bool(sim["has_anbp"]), "sources": [tm.SOURCE_LABELS[s] for s in tm.SOURCES],
            "cka_features": "conv outputs flattened to (N, C*T); SVCCA on channel means (N, C)",
            "probe": f"first {config.probe_samples} task-B test inputs",
            "random_control": "layers 1..n random (seeded), BatchNorm statistics calibrated on B's inputs, "
                              "frozen; trained on task B (the paper used the 1000-class task)",
            "grid_seconds": round(out.seconds, 2)}
