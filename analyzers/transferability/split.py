"""The transferability grid as sweep cells (the ``split`` / ``merge`` hooks of workbench/sweep/split.py).

One cell per (seed, cut n): the analyzer itself with ``seeds=1``, ``cuts=n`` and the run seed ``seed + i``,
so it trains baseA, baseB and the five treatments at n (the cells of one seed retrain the same two bases:
every network's initialisation and data order come from ``derived_seed(seed, treatment, n)``, so they are
the same networks, bit for bit on the CPU). The merge puts the cells back on the (seeds x treatments x cuts)
grid and recomputes metrics and checks from it, exactly as the single call does: per-seed CKA / SVCCA and
LogME / LEEP rows come from each seed's first cell (the single call's scores are the mean over seeds of
these rows), the first seed's layer-by-layer CKA and the UMAP views from the cell at the view cut.
"""

from __future__ import annotations

import numpy as np

from analyzers._shared.findings import Findings
from analyzers.transferability.assemble import Measured, assemble
from analyzers.transferability.grid import GridOutcome, GridSpec
from workbench.core.config import to_dict
from workbench.core.errors import ComputeError

UMAP_ARRAYS = ("umap_base", "umap_transfer", "umap_labels")


def _cuts(config: dict) -> list[int]:
    return sorted({int(c) for c in str(config["cuts"]).split(",") if c.strip()})


def _view(config: dict, cuts: list[int]) -> int:
    return config["view_cut"] if config["view_cut"] in cuts else cuts[-1]


def split_cells(config: dict, seed: int, model: str = "", data: str | None = None) -> list[dict]:
    """Cells (seed-major, cuts ascending) of one call with the full ``config`` and run ``seed``. Only the
    first seed's cell at the view cut computes the UMAP views (the single call shows that seed's)."""
    cuts = _cuts(config)
    view = _view(config, cuts)
    umap = bool(config["umap"])
    return [{"params": {"cuts": str(n), "seeds": 1, "view_cut": n, "umap": umap and i == 0 and n == view},
             "seed": seed + i, "call": ""} for i in range(int(config["seeds"])) for n in cuts]


def merge_cells(cfg, seed: int, parts: list) -> object:
    """The single call's TransferabilityResult from the cells of :func:`split_cells` (same order); ``cfg``
    the call's TransferabilityConfig."""
    config = to_dict(cfg)
    cuts, S = _cuts(config), int(config["seeds"])
    K = len(cuts)
    if len(parts) != S * K:
        raise ComputeError(f"{len(parts)} cells for a grid of {S} seed(s) x {K} cut(s)", "run the split call again")
    view = _view(config, cuts)
    first = [parts[i * K] for i in range(S)]  # each seed's first cell: its bases, CKA / SVCCA and scores
    out = GridOutcome(np.zeros((S, 5, K), np.float32), np.zeros((S, 5, K), np.float32),
                      np.zeros((S, 2), np.float32), np.full((S, 5, K), -1, np.float32))
    for i in range(S):
        out.base[i] = first[i].arrays["base"][0]
        for k in range(K):
            a = parts[i * K + k].arrays
            out.acc[i, :, k], out.mask[i, :, k], out.frozen_ok[i, :, k] = (a[n][0, :, 0] for n in
                                                                            ("acc", "acc_mask", "frozen_ok"))
    out.trained = int(sum(p.metrics.get("cells_trained", 0) for p in parts))
    out.reused = int(sum(p.metrics.get("cells_reused", 0) for p in parts))
    out.seconds = float(sum(p.info.get("grid_seconds", 0.0) for p in parts))
    at_view = parts[cuts.index(view)]
    sim = {"cka_diag": np.stack([p.arrays["cka_diag"][0] for p in first]),
           "svcca_diag": np.stack([p.arrays["svcca_diag"][0] for p in first]),
           "cka_ab": at_view.arrays["cka_ab"], "cka_b_anbp": at_view.arrays["cka_b_anbp"],
           "has_anbp": float(at_view.info.get("has_anbp", False))}
    # a one-seed cell's scores are its seed's row (mean over one row): stacked and averaged like the call's
    sc = {"scores": np.stack([p.arrays["scores"] for p in first]).mean(0),
          "logme_layers": np.stack([p.arrays["logme_layers"] for p in first]).mean(0)}
    views = None
    if config["umap"]:
        views = Findings(arrays={n: at_view.arrays[n] for n in UMAP_ARRAYS},
                         info={"umap_titles": at_view.info.get("umap_titles", [])})
    spec = GridSpec(cfg.dataset, cfg.num_samples, tuple(first[0].info["classes_a"]),
                    tuple(first[0].info["classes_b"]), tuple(cuts), tuple(seed + i for i in range(S)), cfg.epochs,
                    float(cfg.lr), cfg.batch_size, cfg.random_control, cfg.cache_features,
                    first[0].provenance.device)
    return assemble(cfg, Measured(spec, out, view, sim, sc, views))
