"""Representation similarity between two networks' layers: linear CKA and SVCCA (numpy, float64).

- Linear CKA (Kornblith et al., ICML 2019, arXiv:1905.00414): with K = XXᵀ and L = YYᵀ centred,
  CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)); for centred features this equals
  ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F). The unbiased option uses the unbiased HSIC estimator
  (Song et al. 2012; as advised for minibatches by Nguyen et al. 2021). Invariant to orthogonal maps and
  isotropic scaling, not to arbitrary invertible maps.
- SVCCA (Raghu et al., NeurIPS 2017, arXiv:1706.05806): keep each side's top singular directions up to
  99% of the variance, then the mean canonical correlation between the two reduced subspaces.

Feature convention (stated in the UI): conv features (N, C, T) / (N, C, H, W) are flattened to
(N, C·T) / (N, C·H·W) for CKA (the Gram form makes the width irrelevant); SVCCA averages over space
first, (N, C), so the reduced dimension stays well below N.
"""

from __future__ import annotations

import numpy as np


def flatten(a: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, D) float64."""
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def pooled(a: np.ndarray) -> np.ndarray:
    """(N, C, ...) -> (N, C) float64, averaged over the spatial axes ((N, D) stays as is)."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], a.shape[1], -1).mean(-1) if a.ndim > 2 else a


def center_gram(k: np.ndarray, unbiased: bool = False) -> np.ndarray:
    """Centre a Gram matrix (N, N). Unbiased: the U-statistic centring (zero diagonal), N > 3."""
    k = np.array(k, dtype=np.float64, copy=True)
    if not np.allclose(k, k.T, rtol=1e-6, atol=1e-8 * max(1.0, float(np.abs(k).max()))):
        raise ValueError("Gram matrix is not symmetric")
    n = k.shape[0]
    if unbiased:
        np.fill_diagonal(k, 0.0)
        means = k.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        k -= means[:, None]
        k -= means[None, :]
        np.fill_diagonal(k, 0.0)
    else:
        means = k.mean(0)
        means -= means.mean() / 2
        k -= means[:, None]
        k -= means[None, :]
    return k


def cka_from_grams(k: np.ndarray, l: np.ndarray, unbiased: bool = False) -> float:
    """CKA of two (N, N) Gram matrices; 0 when either side carries no variance."""
    kc, lc = center_gram(k, unbiased), center_gram(l, unbiased)
    num = float((kc * lc).sum())
    den = float(np.sqrt(max((kc * kc).sum(), 0.0) * max((lc * lc).sum(), 0.0)))
    return num / den if den > 0 else 0.0


def linear_cka(x: np.ndarray, y: np.ndarray, unbiased: bool = False) -> float:
    """Linear CKA between features x (N, p1) and y (N, p2) of the same N inputs, in [0, 1] (biased)."""
    x, y = flatten(x), flatten(y)
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same inputs on both sides ({len(x)} vs {len(y)} rows)")
    return cka_from_grams(x @ x.T, y @ y.T, unbiased)


def cka_matrix(xs: list[np.ndarray], ys: list[np.ndarray], unbiased: bool = False) -> np.ndarray:
    """Layer x layer CKA (len(xs), len(ys)) float64; each Gram matrix is built once."""
    gx = [flatten(a) @ flatten(a).T for a in xs]
    gy = [flatten(a) @ flatten(a).T for a in ys]
    return np.array([[cka_from_grams(k, l, unbiased) for l in gy] for k in gx])


def _reduce(x: np.ndarray, keep: float) -> np.ndarray:
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    var = s ** 2
    if var.sum() <= 0:
        return x[:, :0]
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), keep - 1e-12) + 1)
    return u[:, :k] * s[:k]


def canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CCA correlations of two centred (N, p) / (N, q) matrices: singular values of Qxᵀ Qy (descending)."""
    if x.shape[1] == 0 or y.shape[1] == 0:
        return np.zeros(0)
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def svcca(x: np.ndarray, y: np.ndarray, keep: float = 0.99) -> float:
    """Mean SVCCA correlation between x (N, p) and y (N, q) (conv features pooled over space), in [0, 1]."""
    rho = canonical_correlations(_reduce(pooled(x), keep), _reduce(pooled(y), keep))
    return float(rho.mean()) if rho.size else 0.0
