"""Rank correlation for the randomization control (Adebayo et al. 2018 compare maps by Spearman rank
correlation of their absolute values), shared by attribution and lrp.

scipy.stats.spearmanr is used as is: it ranks with ties averaged (the definition), and for the
map sizes here (1e2-1e5 elements) it costs one argsort per map, as a hand-written version would.
"""

from __future__ import annotations

import numpy as np


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of |a| and |b| over all elements (any equal shapes, any float dtype).

    A constant map has no ranks to correlate (scipy returns NaN); that counts as 0, "no shared order",
    so a map that a randomized model flattens to a constant passes the control rather than breaking it."""
    from scipy.stats import spearmanr

    x, y = np.abs(np.asarray(a)).ravel(), np.abs(np.asarray(b)).ravel()
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rho = spearmanr(x, y).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def mean_spearman_abs(maps_a: np.ndarray, maps_b: np.ndarray) -> float:
    """Mean over samples of :func:`spearman_abs`; ``maps_a``, ``maps_b``: (N, ...) with equal shapes."""
    return float(np.mean([spearman_abs(p, q) for p, q in zip(maps_a, maps_b, strict=True)]))
