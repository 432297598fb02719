"""Randomization metrics of the quality panel that recompute the explanation: eMPRT and the random-logit test.

**eMPRT** (Hedström et al. 2023, "Sanity Checks Revisited: An Exploration to Repair the Model Parameter
Randomisation Test"; Quantus ``EfficientMPRT``): instead of comparing maps layer by layer as the cascading MPRT
does, explain once with the trained model and once with the FULLY randomized one, and report the relative rise
of the explanation's complexity, ``(H(e_random) - H(e)) / H(e)``, with H the discrete entropy of the map's
values in ``N_BINS`` equal-width bins (Quantus' defaults: signed maps, no normalization, 100 bins). The fully
randomized model is :func:`analyzers._shared.randomization.randomized_copy` with every layer re-drawn, so
BatchNorm follows that module's policy (affine pair re-drawn, running statistics kept; Quantus' own generator
calls ``reset_parameters`` and so also resets the statistics). Threshold, documented: the check passes when the
mean rise over the samples is above 0: a map of a random model must be less structured than the trained
model's; a rise <= 0 says randomizing every weight did not make the map any more disordered. No larger bar is
claimed: how much the entropy rises depends on the model and the data.

**Random-logit test** (Sixt, Granz & Landgraf 2020, "When Explanations Lie: Why Many Modified BP Attributions
Fail"; Quantus ``RandomLogit``): explain the explained class and a random other class (seeded, uniform over the
other classes) and compare the two maps by SSIM (Quantus' comparison: each map divided by its max |value|, the
flattened maps compared by scikit-image's ``structural_similarity`` with the pair's value range, here the
same formula in numpy; lower = more class-sensitive). Sixt et al. show that class-insensitive methods (LRP z+ /
alpha1-beta0, DTD, ...) give nearly the same map for any logit. Threshold, documented: the check passes when
the mean SSIM is below ``LOGIT_SSIM_MAX`` = 0.9, i.e. it flags only maps that barely change with the class; how
far below a class-sensitive method lands depends on how alike the classes look, so no stricter bar is claimed.
The Spearman rank correlation of |map| between the two classes is reported beside it as a plain metric.

NaN guard: non-finite map values are counted (``quality_nonfinite_<name>``) and left out of the histogram
(entropy) or set to 0 (SSIM); a map whose entropy is 0 (constant) has no complexity to rise from: its eMPRT rise
is undefined, stored as 0 with ``quality_emprt_defined_<name>`` False and left out of the mean.
"""

from __future__ import annotations

import numpy as np

from analyzers._shared.findings import Findings
from analyzers._shared.randomization import randomized_copy
from analyzers._shared.stats import spearman_abs

N_BINS = 100
EMPRT_MIN_RISE = 0.0
LOGIT_SSIM_MAX = 0.9
TESTS = ("emprt", "random_logit")


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, np.float64)


def discrete_entropy(a, n_bins: int = N_BINS) -> np.ndarray:
    """(N,) Shannon entropy (nats) of the histogram of each sample's finite map values in ``n_bins`` equal-width
    bins over that sample's range (Quantus ``discrete_entropy``); 0 for a constant or all-non-finite map."""
    v = _np(a).reshape(len(a), -1)
    out = np.zeros(len(v))
    for i, row in enumerate(v):
        row = row[np.isfinite(row)]
        if row.size == 0:
            continue
        counts, _ = np.histogram(row, bins=n_bins)
        p = counts[counts > 0] / row.size
        out[i] = float(-(p * np.log(p)).sum())
    return out


def _window_means(v: np.ndarray, win: int) -> np.ndarray:
    """Means of every full window of length ``win`` along the last axis: (..., n) -> (..., n - win + 1)."""
    c = np.concatenate([np.zeros((*v.shape[:-1], 1)), np.cumsum(v, -1)], -1)
    return (c[..., win:] - c[..., :-win]) / win


def _ssim_1d(p: np.ndarray, q: np.ndarray, data_range: float, win: int) -> float:
    """SSIM of two 1-D float64 signals as scikit-image's ``structural_similarity`` computes it by default
    (Wang et al. 2004: uniform window ``win``, sample covariance, K1 = 0.01, K2 = 0.03, the mean over the windows
    that lie fully inside). Written here with numpy because the panel is shared by analyzers whose provenance
    does not carry scikit-image; tests/analyzers/_shared/test_quality_random.py compares it with scikit-image."""
    m = _window_means(np.stack([p, q, p * p, q * q, p * q]), win)
    ux, uy, uxx, uyy, uxy = m
    norm = win / (win - 1)
    vx, vy, vxy = norm * (uxx - ux * ux), norm * (uyy - uy * uy), norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim_flat(a, b) -> np.ndarray:
    """(N,) SSIM of the flattened maps, each divided by its own max |value| (an all-zero map stays 0), window 7
    (or the largest odd length that fits), data range = the pair's max - min; 1.0 for two equal constant maps."""
    x, y = (np.nan_to_num(_np(m).reshape(len(m), -1), nan=0.0, posinf=0.0, neginf=0.0) for m in (a, b))
    out = np.ones(len(x))
    for i, (p, q) in enumerate(zip(x, y, strict=True)):
        p, q = (r / np.abs(r).max() if np.abs(r).max() > 0 else r for r in (p, q))
        both = np.concatenate([p, q])
        rng = float(both.max() - both.min())
        win = min(7, p.size if p.size % 2 else p.size - 1)
        if rng > 0 and win >= 3:
            out[i] = _ssim_1d(p, q, rng, win)
        elif rng > 0:  # fewer than 3 features: no window fits; the maps differ, call them unlike
            out[i] = 0.0
    return out


def other_classes(target, n_classes: int, seed: int) -> np.ndarray:
    """(N,) int64: for every sample a class drawn uniformly from the ``n_classes - 1`` classes other than its
    target, from a generator seeded with ``seed`` (the same draw on every device and in every chunk)."""
    t = _np(target).astype(np.int64)
    k = np.random.default_rng(seed).integers(0, n_classes - 1, len(t))
    return np.where(k >= t, k + 1, k)


def emprt(explain, randomized, x, maps, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entropy of ``maps`` (N,), entropy of the ``randomized`` model's maps (N,), those maps) for
    ``explain(module, x, target) -> maps like maps``."""
    again = _np(explain(randomized, x, target))
    return discrete_entropy(maps), discrete_entropy(again), again


def _nonfinite(*arrays) -> int:
    return int(sum((~np.isfinite(_np(a))).sum() for a in arrays))


def randomization_findings(explain: dict, module, x, maps: dict, target, *, seed: int = 0,
                           tests: tuple = TESTS) -> Findings:
    """eMPRT and/or the random-logit test (``tests``) for every map name in ``explain`` (name -> callable
    ``(module, x (N, ...) tensor, target (N,) int64 tensor) -> (N, ...)`` map like ``maps[name]``). ``module``:
    the torch module the maps explain (never changed: eMPRT explains a randomized deep copy). Arrays per map:
    ``quality_emprt_<name>`` (N,) rise, ``quality_emprt_defined_<name>`` (N,) bool, ``quality_entropy_<name>`` /
    ``quality_entropy_randomized_<name>`` (N,); ``quality_logit_ssim_<name>`` (N,), ``quality_logit_other``
    (N,) int64. Metrics: the means; checks ``quality_emprt_<name>``, ``quality_random_logit_<name>``."""
    import torch

    bad = set(tests) - set(TESTS)
    if bad:
        raise ValueError(f"unknown randomization test(s) {sorted(bad)}; known: {TESTS}")
    out = Findings(info={"quality_randomization": [t for t in TESTS if t in tests], "quality_emprt_bins": N_BINS,
                         "quality_emprt_min_rise": EMPRT_MIN_RISE, "quality_logit_ssim_max": LOGIT_SSIM_MAX})
    other, rnd = None, None
    if "emprt" in tests:  # one fully randomized copy for every map: the same model state, as eMPRT compares
        rnd = randomized_copy(module, -1, seed).module
    if "random_logit" in tests:
        with torch.no_grad():
            n_classes = int(module(x[:1]).reshape(1, -1).shape[1])
        if n_classes < 2:
            out.info["quality_random_logit_skipped"] = "the model has one output: there is no other class"
        else:
            other = other_classes(target, n_classes, seed)
            out.arrays["quality_logit_other"] = other
    for name, fn in explain.items():
        m = _np(maps[name])
        bad_values = _nonfinite(m)
        if "emprt" in tests:
            h0, h1, again = emprt(fn, rnd, x, m, target)
            bad_values += _nonfinite(again)
            out.merge(_emprt_findings(name, h0, h1))
        if other is not None:
            alt = _np(fn(module, x, torch.as_tensor(other, device=x.device)))
            bad_values += _nonfinite(alt)
            out.merge(_logit_findings(name, m, alt))
        out.metrics[f"quality_nonfinite_{name}"] = float(bad_values)
    return out


def _emprt_findings(name: str, h0: np.ndarray, h1: np.ndarray) -> Findings:
    defined = h0 > 0
    rise = np.where(defined, (h1 - h0) / np.where(defined, h0, 1.0), 0.0)
    mean = float(rise[defined].mean()) if defined.any() else float("nan")
    out = Findings(arrays={f"quality_emprt_{name}": rise, f"quality_emprt_defined_{name}": defined,
                           f"quality_entropy_{name}": h0, f"quality_entropy_randomized_{name}": h1},
                   metrics={f"quality_emprt_{name}": mean, f"quality_entropy_{name}": float(h0.mean()),
                            f"quality_entropy_randomized_{name}": float(h1.mean())})
    undefined = int((~defined).sum())
    note = f"; {undefined} constant map(s) left out (no entropy to rise from)" if undefined else ""
    out.check(f"quality_emprt_{name}", bool(defined.any()) and mean > EMPRT_MIN_RISE,
              mean if np.isfinite(mean) else None, EMPRT_MIN_RISE,
              f"eMPRT (Hedström et al. 2023): relative rise of the map's entropy ({N_BINS} bins) when every layer is "
              f"re-drawn, mean {h0.mean():.3f} -> {h1.mean():.3f} nats; must be above {EMPRT_MIN_RISE:g}{note}")
    return out


def _logit_findings(name: str, m: np.ndarray, alt: np.ndarray) -> Findings:
    s = ssim_flat(m, alt)
    rho = np.array([spearman_abs(np.nan_to_num(p), np.nan_to_num(q)) for p, q in zip(m, alt, strict=True)])
    mean = float(s.mean())
    out = Findings(arrays={f"quality_logit_ssim_{name}": s, f"quality_logit_rank_corr_{name}": rho},
                   metrics={f"quality_logit_ssim_{name}": mean, f"quality_logit_rank_corr_{name}": float(rho.mean())})
    out.check(f"quality_random_logit_{name}", mean < LOGIT_SSIM_MAX, mean, LOGIT_SSIM_MAX,
              "random-logit test (Sixt et al. 2020): SSIM between the map of the explained class and of a random "
              f"other class (1 = the same map whatever the class); must be below {LOGIT_SSIM_MAX:g}")
    return out
