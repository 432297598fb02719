"""Weight empirical spectral densities (ESD) and heavy-tailed power-law diagnostics, WeightWatcher style.

Martin & Mahoney, JMLR 22(165) 2021 (arXiv:1810.01075) and Nature Communications 12:4122 (2021)
(arXiv:2002.06716); conventions read in weightwatcher 0.7.7 (``analyze()`` defaults):

- a layer W is N x M (N >= M); its ESD is the eigenvalues of X = W^T W (lambda = sigma^2), no 1/N scaling;
- a Conv2d kernel (c_out, c_in, k, k) gives k*k slices W[:, :, a, b]; their eigenvalues are **pooled** into one
  ESD (``pool=True``). With ``conv2d_norm=True`` weightwatcher 0.7.7 multiplies the pooled slices by
  sqrt(1/2) (its per-slice factor sqrt(k^2/2) applies only in the unpooled ``ww2x`` mode), so conv2d
  eigenvalues are halved; we do the same (alpha does not depend on this scale; lambda_max does).
  Conv1d kernels are sliced and pooled the same way (weightwatcher treats them differently);
- the tail p(lambda) ~ lambda^-alpha for lambda >= lambda_min is fitted by the continuous power-law MLE
  alpha = 1 + n_tail / sum log(lambda_i / lambda_min), with lambda_min chosen among the eigenvalues to
  minimise the Kolmogorov-Smirnov distance (Clauset, Shalizi & Newman 2009), eigenvalues <= 1e-5 dropped;
- metrics: alpha, alpha_weighted = alpha log10 lambda_max, log_alpha_norm = log10 sum lambda^alpha,
  log_norm = log10 sum lambda (squared Frobenius norm), log_spectral_norm = log10 lambda_max,
  stable_rank = sum lambda / lambda_max;
- flags computed from alpha directly (issue #231 of weightwatcher swapped its warnings for a while; #235):
  alpha < 2 possibly over-trained, alpha > 6 under-trained (random-like), 2..6 the well-trained band.
"""

from __future__ import annotations

import numpy as np

EVALS_THRESH = 1e-5
KS_CHUNK = 256
SMALL_N, SMALL_K_MIN = 20, 8  # weightwatcher 0.7.7 WW_powerlaw: small-sample fit below 20 eigenvalues
CONV2D_SCALE = 0.5  # eigenvalue factor: weightwatcher 0.7.7 pooled conv2d_norm multiplies W by sqrt(1/2)
ALPHA_LOW, ALPHA_HIGH = 2.0, 6.0
#: a fit from fewer eigenvalues is shown but flagged unreliable and left out of the mean (WeightWatcher
#: advises at least 50; a tail of ~10 eigenvalues fits almost any exponent)
RELIABLE_EVALS = 50
FLAGS = ("ok", "over-trained?", "under-trained", "fit failed", "too few eigenvalues",
         f"unreliable: fewer than {RELIABLE_EVALS} eigenvalues")
UNRELIABLE = 5


def fitted(flag: int) -> bool:
    """True for a flag that comes with a fitted alpha (reliable or not)."""
    return int(flag) < 3 or int(flag) == UNRELIABLE


def esd(weight: np.ndarray, conv_norm: bool = True) -> tuple[np.ndarray, int, int]:
    """Eigenvalues of W^T W for a Linear (out, in) or conv (c_out, c_in, *k) weight.

    Returns (eigenvalues float64 ascending, N, M) with N >= M the slice's dimensions; conv slices are
    pooled (M * prod(k) values) and, for conv layers with ``conv_norm``, scaled by CONV2D_SCALE."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim == 2:
        mats = w[None]
    else:
        mats = w.reshape(w.shape[0], w.shape[1], -1).transpose(2, 0, 1)  # (k..., c_out, c_in)
    n, m = max(mats.shape[1:]), min(mats.shape[1:])
    sv = np.linalg.svd(mats, compute_uv=False)[:, :m]
    ev = sv.ravel() ** 2
    if w.ndim > 2 and conv_norm:
        ev = ev * CONV2D_SCALE
    return np.sort(ev), n, m


def fit_power_law(evals: np.ndarray, thresh: float = EVALS_THRESH) -> dict:
    """Continuous power-law tail fit with the KS-chosen lower cutoff (weightwatcher's ``WWFit``).

    Below SMALL_N eigenvalues weightwatcher 0.7.7 switches to a bias-corrected MLE, alpha = 1 + (n - 1) / sum
    log(lambda_i / lambda_min), over tails of at least SMALL_K_MIN values, choosing lambda_min by
    D_KS - 0.868 / sqrt(n_tail); we do the same so both tools agree on small layers.
    evals: eigenvalues (any order). Returns alpha, xmin, D (KS distance), sigma (alpha's standard error),
    n_tail, ok (False when no candidate cutoff gives alpha > 1)."""
    data = np.sort(np.asarray(evals, dtype=np.float64))
    data = data[data > thresh]
    fail = {"alpha": 0.0, "xmin": 0.0, "D": 1.0, "sigma": 0.0, "n_tail": 0, "ok": False}
    if data.size < 3:
        return fail
    logs = np.log(data)
    tail_sums = np.cumsum(logs[::-1])[::-1]  # sum of logs from i to the end
    nn = data.size
    idx = np.arange(nn - 1)
    n = (nn - idx).astype(np.float64)  # tail sizes for every candidate cutoff data[i]
    denom = tail_sums[:-1] - n * logs[:-1]
    small = nn < SMALL_N
    valid = denom > (1e-12 if small else 0.0)
    if small:
        valid &= n >= SMALL_K_MIN
    alpha = 1.0 + np.where(valid, (n - 1.0 if small else n) / np.where(valid, denom, 1.0), 0.0)
    valid &= alpha > 1
    if not valid.any():
        return fail
    ks = np.ones(nn - 1)
    for lo in range(0, nn - 1, KS_CHUNK):  # KS distance of every candidate, a block of rows at a time
        i = idx[lo:lo + KS_CHUNK]
        ratio = data[None, :] / data[i, None]  # (b, nn)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            cdf = 1.0 - ratio ** (1.0 - alpha[i, None])
        emp = (np.arange(nn)[None, :] - i[:, None]) / n[i, None]
        dev = np.where(np.arange(nn)[None, :] >= i[:, None], np.abs(cdf - emp), 0.0)
        ks[lo:lo + KS_CHUNK] = dev.max(1)
    score = np.where(valid, ks - (0.868 / np.sqrt(n) if small else 0.0), np.inf)
    best_i = int(np.argmin(score))
    best = (score[best_i], float(ks[best_i]), float(alpha[best_i]), data[best_i], int(n[best_i]))
    _, d, alpha, xmin, n = best
    return {"alpha": float(alpha), "xmin": float(xmin), "D": d, "sigma": float((alpha - 1) / np.sqrt(n)),
            "n_tail": int(n), "ok": True}


def flag(alpha: float, ok: bool, enough: bool, n_evals: int = RELIABLE_EVALS) -> int:
    """Index into FLAGS for a fitted alpha (computed from alpha itself, not from a tool's warning)."""
    if not enough:
        return 4
    if not ok:
        return 3
    if n_evals < RELIABLE_EVALS:
        return UNRELIABLE
    if alpha < ALPHA_LOW:
        return 1
    return 2 if alpha > ALPHA_HIGH else 0


def layer_metrics(evals: np.ndarray, fit: dict) -> dict:
    """alpha-derived and norm metrics of one ESD (weightwatcher column names)."""
    lam_max = float(evals.max()) if evals.size else 0.0
    total = float(evals.sum())
    alpha = fit["alpha"]
    return {
        "alpha": alpha,
        "alpha_weighted": alpha * np.log10(lam_max) if lam_max > 0 else 0.0,
        "log_alpha_norm": float(np.log10(np.sum(evals ** alpha))) if fit["ok"] and lam_max > 0 else 0.0,
        "log_norm": float(np.log10(total)) if total > 0 else 0.0,
        "log_spectral_norm": float(np.log10(lam_max)) if lam_max > 0 else 0.0,
        "lambda_max": lam_max,
        "stable_rank": total / lam_max if lam_max > 0 else 0.0,
    }


def shuffled(weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The randomized-weights control: the same entries, permuted (kills correlations, keeps the scale)."""
    w = np.asarray(weight)
    return rng.permutation(w.ravel()).reshape(w.shape)


def analyse_weight(weight: np.ndarray, *, min_evals: int, max_evals: int, rng: np.random.Generator,
                   conv_norm: bool = True) -> dict:
    """ESD, power-law fit, metrics and flag of one weight, plus the shuffled control's ESD and alpha.

    Returns evals / rand_evals (float64 ascending), N, M, fit (dict), metrics (dict), flag (int),
    rand_alpha, rand_ok, skipped (True when the ESD is smaller than min_evals or larger than max_evals)."""
    evals, n, m = esd(weight, conv_norm)
    rand, _, _ = esd(shuffled(weight, rng), conv_norm)
    enough = min_evals <= evals.size <= max_evals
    fit = fit_power_law(evals) if enough else {"alpha": 0.0, "xmin": 0.0, "D": 1.0, "sigma": 0.0, "n_tail": 0,
                                               "ok": False}
    rfit = fit_power_law(rand) if enough else {"alpha": 0.0, "ok": False}
    return {"evals": evals, "rand_evals": rand, "N": n, "M": m, "fit": fit, "metrics": layer_metrics(evals, fit),
            "flag": flag(fit["alpha"], fit["ok"], enough, evals.size), "rand_alpha": rfit["alpha"],
            "rand_ok": rfit["ok"],
            "skipped": not enough}


def marchenko_pastur(lam: np.ndarray, mean_eig: float, q: float) -> np.ndarray:
    """MP density of the eigenvalues of W^T W (W: N x M i.i.d., Q = N / M >= 1) with the same mean eigenvalue.

    s = mean eigenvalue; edges s (1 +- 1/sqrt(Q))^2; p(lambda) = Q sqrt((l+ - l)(l - l-)) / (2 pi s lambda)."""
    lo, hi = mean_eig * (1 - 1 / np.sqrt(q)) ** 2, mean_eig * (1 + 1 / np.sqrt(q)) ** 2
    inside = (lam > lo) & (lam < hi)
    out = np.zeros_like(lam, dtype=np.float64)
    out[inside] = q * np.sqrt((hi - lam[inside]) * (lam[inside] - lo)) / (2 * np.pi * mean_eig * lam[inside])
    return out
