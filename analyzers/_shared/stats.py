"""Rank correlation for the randomization control (Adebayo et al. 2018 compare maps by Spearman rank
correlation of their absolute values), shared by attribution and lrp.

Written here rather than calling ``scipy.stats.spearmanr``: importing scipy.stats costs 0.5 s of every
CLI run's start (issue 21) for one rank correlation. It is the textbook definition, ranks with ties
averaged and the Pearson correlation of the ranks, one argsort per map as scipy does; the test compares
it with scipy.stats.spearmanr on tied and untied maps.
"""

from __future__ import annotations

import numpy as np


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (scipy.stats.rankdata's "average")."""
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])  # first position of each run of equal values
    ends = np.r_[starts[1:], v.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based positions starts+1 .. ends
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two 1-D arrays: Pearson correlation of their average ranks (NaN if one is constant)."""
    rx, ry = _average_ranks(np.asarray(x, np.float64)), _average_ranks(np.asarray(y, np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of |a| and |b| over all elements (any equal shapes, any float dtype).

    A constant map has no ranks to correlate (scipy returns NaN); that counts as 0, "no shared order",
    so a map that a randomized model flattens to a constant passes the control rather than breaking it."""
    x, y = np.abs(np.asarray(a)).ravel(), np.abs(np.asarray(b)).ravel()
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rho = spearman(x, y)
    return float(rho) if np.isfinite(rho) else 0.0


def mean_spearman_abs(maps_a: np.ndarray, maps_b: np.ndarray) -> float:
    """Mean over samples of :func:`spearman_abs`; ``maps_a``, ``maps_b``: (N, ...) with equal shapes."""
    return float(np.mean([spearman_abs(p, q) for p, q in zip(maps_a, maps_b, strict=True)]))
