"""Measures taken on the grid's trained networks: CKA / SVCCA between layers, LogME / LEEP of candidate
sources for task B, and UMAP views of one layer (fitted once per network and layer, bounded cache)."""

from __future__ import annotations

import numpy as np
import torch

from analyzers.transferability import nets as tn
from analyzers.transferability.grid import Grid, GridOutcome, derived_seed
from analyzers.transferability.scores import leep, logme, softmax
from analyzers.transferability.similarity import cka_matrix, linear_cka, svcca
from workbench.core.cache import BoundedCache
from workbench.core.errors import ComputeError

SOURCES = ("base_a", "random_init", "base_b")
SOURCE_LABELS = {"base_a": "baseA (other half, same domain)", "random_init": "random init (control)",
                 "base_b": "baseB (the target's own net)"}
SCORE_SAMPLES = 1000  # target training inputs used for LogME / LEEP
UMAP_CACHE_SIZE = 8
_UMAP = BoundedCache(UMAP_CACHE_SIZE)  # (cell key, layer, probe size) -> (N, 2) float32 embedding


@torch.no_grad()
def layer_features(net: tn.TransferNet, x: torch.Tensor) -> list[np.ndarray]:
    """The 5 layer outputs of net on x, as float32 numpy arrays (N, ...)."""
    net.eval()
    return [o.float().cpu().numpy() for o in net.layer_outputs(x)]


def single_blas_thread(fn):
    """Run numpy linear algebra on one BLAS thread: on a shared 2-core machine OpenBLAS's spinning
    threads made a 1000 x 2048 SVD 17x slower (32 s vs 1.9 s)."""

    def wrapped(*args, **kwargs):
        try:
            from threadpoolctl import threadpool_limits  # ships with scikit-learn
        except ImportError:  # pragma: no cover - then BLAS keeps its own thread count
            return fn(*args, **kwargs)
        with threadpool_limits(1):
            return fn(*args, **kwargs)

    wrapped.__doc__, wrapped.__name__ = fn.__doc__, fn.__name__
    return wrapped


@single_blas_thread
def similarity(grid: Grid, out: GridOutcome, probe: torch.Tensor, view_cut: int, unbiased: bool) -> dict:
    """CKA and SVCCA on the probe inputs (N, ...) (task B's test inputs).

    Returns ``cka_diag`` / ``svcca_diag`` (S, 5) baseA vs baseB per layer and seed, and for the first
    seed the layer x layer matrices ``cka_ab`` (baseA vs baseB) and ``cka_b_anbp`` (baseB vs AnB+ at
    ``view_cut``; zeros with ``has_anbp`` = 0 when that cell was not run), all float64."""
    spec = grid.spec
    cka_diag = np.zeros((len(spec.seeds), tn.N_LAYERS))
    svcca_diag = np.zeros_like(cka_diag)
    res: dict = {}
    for si, s in enumerate(spec.seeds):
        fa = layer_features(grid.net(out.cells[(s, "base_a", 0)]), probe)
        fb = layer_features(grid.net(out.cells[(s, "base_b", 0)]), probe)
        cka_diag[si] = [linear_cka(a, b, unbiased) for a, b in zip(fa, fb, strict=True)]
        svcca_diag[si] = [svcca(a, b) for a, b in zip(fa, fb, strict=True)]
        if si == 0:
            res["cka_ab"] = cka_matrix(fa, fb, unbiased)
            key = out.cells.get((s, "anb_plus", view_cut))
            res["has_anbp"] = float(key is not None)
            res["cka_b_anbp"] = (cka_matrix(fb, layer_features(grid.net(key), probe), unbiased)
                                 if key is not None else np.zeros((tn.N_LAYERS, tn.N_LAYERS)))
    res["cka_diag"], res["svcca_diag"] = cka_diag, svcca_diag
    return res


def _random_source(grid: Grid, seed: int, x: torch.Tensor) -> tn.TransferNet:
    net = tn.build_net(grid.spec.dataset, len(grid.spec.classes_a), derived_seed(seed, "random_init"))
    net = net.to(grid.spec.device)
    tn.calibrate_bn(net, x, tn.N_LAYERS)
    return net


@single_blas_thread
def scores(grid: Grid, out: GridOutcome) -> dict:
    """LEEP and LogME of each candidate source (SOURCES) for task B, mean over seeds: ``scores``
    (3, 2) float64 [LEEP, LogME of the penultimate layer]; ``logme_layers`` (2, 5): LogME of baseA's
    and the random net's layer n features for task B (how well a linear read-out of a cut would do)."""
    b = grid.tasks["b"]
    x, y = b["x_train"][:SCORE_SAMPLES], b["y_train"][:SCORE_SAMPLES].cpu().numpy()
    table = np.zeros((len(grid.spec.seeds), len(SOURCES), 2))
    layers = np.zeros((len(grid.spec.seeds), 2, tn.N_LAYERS))
    for si, s in enumerate(grid.spec.seeds):
        nets = {"base_a": grid.net(out.cells[(s, "base_a", 0)]), "random_init": _random_source(grid, s, x),
                "base_b": grid.net(out.cells[(s, "base_b", 0)])}
        for j, name in enumerate(SOURCES):
            feats = layer_features(nets[name], x)
            probs = softmax(tn.predict(nets[name], x).cpu().numpy())
            table[si, j] = leep(probs, y, len(grid.spec.classes_b)), logme(feats[-1], y)
            if name != "base_b":
                layers[si, j] = [logme(f, y) for f in feats]
    if not np.isfinite(table).all() or not np.isfinite(layers).all():
        raise ComputeError("LogME/LEEP produced a non-finite value", "this is a bug in transfer_scores")
    return {"scores": table.mean(0), "logme_layers": layers.mean(0)}


@single_blas_thread
def umap_embedding(grid: Grid, key: tuple, probe: torch.Tensor, layer: int, seed: int) -> np.ndarray:
    """2-D UMAP (N, 2) float32 of the network's layer ``layer`` (1..5) features on the probe inputs,
    fitted once per (network, layer, probe size) and cached (the first fit in a process compiles ~10 s)."""

    def fit() -> np.ndarray:
        import umap

        feats = layer_features(grid.net(key), probe)[layer - 1]
        feats = feats.reshape(len(feats), -1)
        reducer = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1)
        return reducer.fit_transform(feats).astype(np.float32)

    return _UMAP.get_or_create((key, layer, int(len(probe)), seed), fit)
