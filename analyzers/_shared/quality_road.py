"""ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods"): remove
pixels by noisy linear imputation instead of a constant baseline, so the perturbed picture stays close to the
data and the curve measures the removed information, not the model's reaction to out-of-distribution holes.

Each removed pixel takes the weighted mean of its 8 neighbours (1/6 for the 4 direct ones, 1/12 for the
diagonal ones, renormalized at the border by keeping only in-picture neighbours), with the neighbours that are
removed too solved for jointly: one sparse linear system per picture and step, shared by the channels; then
Gaussian noise (``noise``, in model-input units) is added. A region with no kept neighbour at all (e.g. the
whole picture) is imputed as 0, the system's least-norm answer (a 1e-9 ridge makes it regular).

MoRF removes the most relevant pixels first (a faithful map makes it fall fast: low AUC); LeRF removes the
least relevant first (it should stay high: high AUC). Written here, not taken from Quantus: Quantus' ROAD
loops one forward per step and sample and reports accuracy; this runs batched forwards and reads the
probability of the explained class like the deletion/insertion curves next to it.
"""

from __future__ import annotations

import numpy as np

NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6), (0, 1, 1 / 6),
              (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))
RIDGE = 1e-9


def impute(x: np.ndarray, gone: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` (C, H, W) float64, ``gone`` (H, W) bool -> x with the gone pixels imputed (a new array)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    c, h, w = x.shape
    idx = np.flatnonzero(gone)
    out = x.reshape(c, -1).copy()
    if len(idx) == 0:
        return out.reshape(x.shape)
    pos = np.full(h * w, -1)
    pos[idx] = np.arange(len(idx))
    r, q = np.divmod(idx, w)
    diag, rhs = np.full(len(idx), RIDGE), np.zeros((len(idx), c))
    rows, cols, vals = [], [], []
    for dy, dx, wt in NEIGHBOURS:
        ny, nx = r + dy, q + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        k, nb = np.flatnonzero(ok), (ny * w + nx)[ok]
        diag[k] += wt
        unknown = pos[nb] >= 0
        rows.append(k[unknown])
        cols.append(pos[nb[unknown]])
        vals.append(np.full(int(unknown.sum()), -wt))
        rhs[k[~unknown]] += wt * out[:, nb[~unknown]].T
    n = len(idx)
    a = coo_matrix((np.concatenate([diag, *vals]), (np.concatenate([np.arange(n), *rows]),
                                                    np.concatenate([np.arange(n), *cols]))), shape=(n, n)).tocsc()
    v = np.asarray(spsolve(a, rhs)).reshape(n, c)
    out[:, idx] = v.T + (rng.normal(0.0, noise, (c, n)) if noise > 0 else 0.0)
    return out.reshape(x.shape)


def road_curves(forward, x, maps, target, *, step: float = 0.05, noise: float = 0.01, seed: int = 0,
                rows_per_forward: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fractions (S,), MoRF (N, S), LeRF (N, S)) probabilities of the explained class. ``x`` (N, C, H, W)
    tensor, ``maps`` (N, H, W) tensor or array (a pixel is a feature), ``target`` (N,) int64 tensor."""
    import torch

    from analyzers._shared.quality import step_counts

    rng = np.random.default_rng(seed)
    xs, m = x.detach().double().cpu().numpy(), np.asarray(torch.as_tensor(maps).double().cpu())
    n, _, h, w = xs.shape
    counts = step_counts(h * w, step)
    curves = []
    for sign in (-1.0, 1.0):  # MoRF: descending relevance; LeRF: ascending
        batch = []
        for i in range(n):
            order = np.argsort(sign * m[i].ravel(), kind="stable")
            for c in counts:
                gone = np.zeros(h * w, bool)
                gone[order[:c]] = True
                batch.append(impute(xs[i], gone.reshape(h, w), noise, rng))
        inp = torch.as_tensor(np.stack(batch)).to(x)
        with torch.no_grad():
            logits = torch.cat([forward(inp[k:k + rows_per_forward]) for k in range(0, len(inp), rows_per_forward)])
        prob = torch.softmax(logits.double(), 1).reshape(n, len(counts), -1)
        curves.append(prob.gather(2, target.view(n, 1, 1).expand(n, len(counts), 1).to(prob.device))[..., 0]
                      .cpu().numpy())
    return counts / counts[-1], curves[0], curves[1]
