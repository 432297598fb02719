"""Transferability scores of a source network for a target task, from their formulas (numpy, float64).

- LogME (You et al., ICML 2021, arXiv:2102.11005): for features F (n, D) and each class k's one-hot
  column y, maximize the evidence of Bayesian linear regression y ~ N(Fm, 1/β), m ~ N(0, 1/α) by the
  fixed-point steps γ = Σ βσ_i/(α+βσ_i), α <- γ/mᵀm, β <- (n-γ)/‖Fm-y‖² (σ_i eigenvalues of FᵀF), then
  L = n/2 log β + D/2 log α - n/2 log 2π - β/2 ‖Fm-y‖² - α/2 ‖m‖² - 1/2 log|αI + βFᵀF|.
  LogME = mean_k L_k / n. One eigendecomposition of F's Gram matrix serves every class. Higher = more transferable.
- LEEP (Nguyen et al., ICML 2020, arXiv:2002.12462): θ(x) the source's softmax over its own labels z,
  P(y, z) = 1/n Σ_{i: y_i = y} θ(x_i)_z, P(y|z) = P(y, z)/Σ_y P(y, z),
  LEEP = 1/n Σ_i log Σ_z P(y_i|z) θ(x_i)_z. Always <= 0; higher = more transferable.
"""

from __future__ import annotations

import numpy as np

LOGME_ITERS = 100
LOGME_TOL = 1e-5


def _evidence(s2: np.ndarray, z: np.ndarray, y_sq: float, n: int, d: int) -> float:
    """Maximized log evidence of one target column. s2: eigenvalues σ_i of FᵀF on F's row space (r,);
    z = Uᵀy (r,); y_sq = ‖y‖². Components outside span(F) only add to the residual."""
    alpha, beta = 1.0, 1.0
    out_of_span = max(y_sq - float(z @ z), 0.0)
    for _ in range(LOGME_ITERS):
        gamma = float((beta * s2 / (alpha + beta * s2)).sum())
        m2 = float(((beta * np.sqrt(s2) * z / (alpha + beta * s2)) ** 2).sum())
        res2 = float(((alpha * z / (alpha + beta * s2)) ** 2).sum()) + out_of_span
        new_alpha = gamma / max(m2, 1e-300)
        new_beta = (n - gamma) / max(res2, 1e-300)
        done = abs(new_alpha / alpha - 1) < LOGME_TOL and abs(new_beta / beta - 1) < LOGME_TOL
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2 = float(((beta * np.sqrt(s2) * z / (alpha + beta * s2)) ** 2).sum())
    res2 = float(((alpha * z / (alpha + beta * s2)) ** 2).sum()) + out_of_span
    logdet = float(np.log(alpha + beta * s2).sum()) + (d - len(s2)) * np.log(alpha)
    return (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * res2 - alpha / 2 * m2 - logdet / 2)


def _row_space(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors U (n, r) and eigenvalues σ = s² (r,) of F's non-zero spectrum, from the
    eigendecomposition of the smaller Gram matrix (FFᵀ or FᵀF): much cheaper than an SVD when D >> n."""
    n, d = f.shape
    if n <= d:
        sig, u = np.linalg.eigh(f @ f.T)
    else:
        sig, v = np.linalg.eigh(f.T @ f)
        u = f @ v
    keep = sig > max(float(sig.max(initial=0.0)), 0.0) * 1e-10
    sig, u = sig[keep], u[:, keep]
    if n > d:
        u = u / np.sqrt(sig)
    return u, sig


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of features (n, D) (any trailing shape is flattened) for integer labels (n,)."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    labels = np.asarray(labels).astype(np.int64)
    n, d = f.shape
    u, s2 = _row_space(f)
    out = []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)
        out.append(_evidence(s2, u.T @ y, float(y @ y), n, d) / n)
    return float(np.mean(out))


def logme_literal(features: np.ndarray, labels: np.ndarray, iters: int = LOGME_ITERS) -> float:
    """The same evidence with explicit D x D matrices (slow; the test oracle for :func:`logme`)."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n, d = f.shape
    ftf = f.T @ f
    sig = np.linalg.eigvalsh(ftf).clip(min=0)
    out = []
    for k in np.unique(labels):
        y = (np.asarray(labels) == k).astype(np.float64)
        alpha, beta = 1.0, 1.0
        for _ in range(iters):
            a = alpha * np.eye(d) + beta * ftf
            m = beta * np.linalg.solve(a, f.T @ y)
            gamma = float((beta * sig / (alpha + beta * sig)).sum())
            alpha, beta = gamma / (m @ m), (n - gamma) / float(((f @ m - y) ** 2).sum())
        a = alpha * np.eye(d) + beta * ftf
        m = beta * np.linalg.solve(a, f.T @ y)
        ev = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
              - beta / 2 * float(((f @ m - y) ** 2).sum()) - alpha / 2 * float(m @ m)
              - np.linalg.slogdet(a)[1] / 2)
        out.append(ev / n)
    return float(np.mean(out))


def leep(source_probs: np.ndarray, labels: np.ndarray, n_target: int | None = None) -> float:
    """LEEP of a source's softmax outputs (n, Z) (rows sum to 1) for target labels (n,) in 0..Y-1."""
    theta = np.asarray(source_probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    n_y = int(n_target or labels.max() + 1)
    joint = np.zeros((n_y, theta.shape[1]))
    np.add.at(joint, labels, theta)
    joint /= n
    cond = joint / np.maximum(joint.sum(0, keepdims=True), 1e-300)  # P(y | z)
    eep = (theta * cond[labels]).sum(1)  # Σ_z P(y_i | z) θ(x_i)_z
    return float(np.log(np.maximum(eep, 1e-300)).mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
