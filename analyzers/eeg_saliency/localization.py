"""Localization of a heat map against planted EEG bursts: relevance mass in the bursts, share on the
posterior channels and the pointing game, read from one documented readout of the map.

Readouts (``readout``; what counts as "relevance" for a map that may be signed):

* ``positive`` (default): the positive part max(R, 0), evidence *for* the explained class. This is the
  relevance mass accuracy of Arras, Osman & Samek 2022 (CLEVR-XAI) and of Quantus'
  ``RelevanceMassAccuracy`` (positive attributions inside the mask over all positive attributions).
  Negative relevance is evidence against the class; counting it as mass (the ``absolute`` readout)
  scores counter-evidence and sign-alternating noise as "localized".
* ``absolute``: |R| (the readout before issue 17; kept to reproduce those numbers).
* ``smoothed``: the signed map convolved along time with the CAM variant's truncated Gaussian
  (sigma = ``radius``), then its positive part: the same temporal smoothing the CAM variant applies
  by construction, so that the three maps are compared at one temporal resolution.

CAM-variant maps are non-negative and already smoothed, so every readout leaves them unchanged.
"""

from __future__ import annotations

import numpy as np

READOUTS = ("positive", "absolute", "smoothed")


def gaussian(radius: int) -> np.ndarray:
    """The CAM variant's truncated Gaussian (sigma = radius, |k| < radius), float64, unit peak scale."""
    k = np.arange(-(radius - 1), radius, dtype=np.float64)
    return np.exp(-0.5 * (k / radius) ** 2) / (radius * np.sqrt(2 * np.pi))


def readout(maps: np.ndarray, how: str = "positive", radius: int = 32, signed: bool = True) -> np.ndarray:
    """The non-negative map (N, C, T) float64 the scores are computed on; ``signed=False`` for maps that are
    non-negative and smoothed by construction (the CAM variant), which are returned as they are."""
    m = np.asarray(maps, np.float64)
    if how not in READOUTS:
        raise ValueError(f"readout {how!r} is not one of {READOUTS}")
    if not signed:
        return np.clip(m, 0.0, None)
    if how == "absolute":
        return np.abs(m)
    if how == "smoothed":
        g = gaussian(radius)
        # FFT convolution along time, zero-padded ('same' alignment): the direct loop is O(T * K) per row
        n = m.shape[-1] + len(g) - 1
        full = np.fft.irfft(np.fft.rfft(m, n, axis=-1) * np.fft.rfft(g, n), n, axis=-1)
        m = full[..., radius - 1: radius - 1 + maps.shape[-1]]
    return np.clip(m, 0.0, None)


def dilate_time(time_mask: np.ndarray, dilate: int) -> np.ndarray:
    """(N, T) bool burst times widened by ``dilate`` samples on each side."""
    tm = np.asarray(time_mask, bool)
    if dilate <= 0:
        return tm.copy()
    c = np.cumsum(np.pad(tm.astype(np.int64), ((0, 0), (dilate + 1, dilate))), axis=1)
    return (c[:, 2 * dilate + 1:] - c[:, : -(2 * dilate + 1)]) > 0


def scores(r: np.ndarray, mask: np.ndarray, posterior: np.ndarray, dilate: int) -> np.ndarray:
    """(N, 3) float32 per window from a readout ``r`` (N, C, T) >= 0: mass inside the burst times (share of
    the map's total over the time steps where any channel has a burst), share on the posterior channels,
    and the pointing-game hit (1.0 when the map's largest entry lies on a posterior channel and within the
    burst times widened by ``dilate`` samples). A map with no mass scores 0 everywhere."""
    r = np.asarray(r, np.float64)
    total = r.sum((1, 2))
    safe = np.where(total > 0, total, 1.0)
    time_mask = np.asarray(mask, bool).any(1)
    mass = np.where(total > 0, (r.sum(1) * time_mask).sum(1) / safe, 0.0)
    post = np.where(total > 0, r[:, posterior].sum((1, 2)) / safe, 0.0)
    c, t = np.divmod(r.reshape(len(r), -1).argmax(1), r.shape[2])
    hit = (total > 0) & posterior[c] & dilate_time(time_mask, dilate)[np.arange(len(r)), t]
    return np.stack([mass, post, hit.astype(np.float64)], axis=1).astype(np.float32)


def localize(maps: np.ndarray, mask: np.ndarray, posterior: np.ndarray, dilate: int, how: str = "positive",
             radius: int = 32, signed: bool = True) -> np.ndarray:
    """:func:`scores` of the ``how`` readout of ``maps``."""
    return scores(readout(maps, how, radius, signed), mask, posterior, dilate)
