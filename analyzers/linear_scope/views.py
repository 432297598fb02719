"""What LinearScope shows: classifier votes and image-to-image rows, columns and bases, plus the
measures that turn the paper's qualitative findings into numbers. numpy / torch in, arrays out.

Classifier (paper: "a pixel-wise vote per class", "heavy reliance on bias"):
  vote map V_c = sum over channels of A_c * x0 (A_c = row c of A), so sum(V_c) + c_c = logit_c;
  bias share_c = |c_c| / (|sum V_c| + |c_c|).
Image-to-image (paper: "a wavelet-type basis"): for singular vectors v (C, H, W), with p the
normalized spatial energy sum_ch v^2 and q the normalized power spectrum |FFT2 v|^2:
  spatial support  = 1 / (N sum p^2)   (fraction of pixels effectively occupied; delta -> 1/N),
  spectral support = 1 / (N sum q^2)   (fraction of frequencies effectively occupied),
  orientation coherence = (l1 - l2) / (l1 + l2) of the spectral second-moment matrix (0 isotropic,
  1 a single orientation), scale = the spectral centroid radius in cycles / pixel.
The same measures on i.i.d. Gaussian vectors of the same shape are the reference (random vectors
occupy about 1/3 of the pixels and 1/2 of the frequencies and have no orientation).
"""

from __future__ import annotations

import numpy as np

MEASURES = ("spatial_support", "spectral_support", "orientation_coherence", "scale")


def parse_pixels(text: str, shape: tuple[int, int], what: str) -> list[tuple[int, int]]:
    """'r,c;r,c' -> [(r, c)] inside ``shape`` (H, W); empty text -> the centre. Raises ConfigError."""
    from workbench.core.errors import ConfigError

    if not text.strip():
        return [(shape[0] // 2, shape[1] // 2)]
    out = []
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        try:
            r, c = (int(v) for v in part.split(","))
        except ValueError:
            raise ConfigError(f"{what}={text!r} is not a list of row,col pairs", "write e.g. 10,20;32,32") from None
        if not (0 <= r < shape[0] and 0 <= c < shape[1]):
            raise ConfigError(f"{what} pixel ({r}, {c}) is outside the {shape[0]}x{shape[1]} image",
                              f"use rows 0..{shape[0] - 1} and columns 0..{shape[1] - 1}")
        out.append((r, c))
    if len(out) > 64:
        raise ConfigError(f"{what} lists {len(out)} pixels", "ask for at most 64")
    return out


def foreground(x0: np.ndarray) -> np.ndarray:
    """Pixels that differ from the border colour: (C, H, W) -> bool (H, W). The 'object' of a digit
    or a centred picture; distance above a quarter of its maximum."""
    border = np.concatenate([x0[:, 0], x0[:, -1], x0[:, :, 0], x0[:, :, -1]], axis=1)
    dist = np.sqrt(((x0 - np.median(border, axis=1)[:, None, None]) ** 2).sum(0))
    return dist > 0.25 * max(float(dist.max()), 1e-12)


def vote_measures(vote: np.ndarray, fg: np.ndarray) -> dict:
    """Concentration of one vote map (H, W): share of |V| on the foreground and in the top 10% pixels."""
    mass = np.abs(vote)
    total = max(float(mass.sum()), 1e-30)
    top = np.sort(mass.ravel())[::-1][: max(1, mass.size // 10)]
    return {"vote_object_share": float(mass[fg].sum() / total), "object_area_fraction": float(fg.mean()),
            "vote_top10_share": float(top.sum() / total)}


def bias_share(lin: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """|c| / (|A x0| + |c|) elementwise, 0 where both vanish."""
    den = np.abs(lin) + np.abs(bias)
    return np.where(den > 0, np.abs(bias) / np.where(den > 0, den, 1.0), 0.0)


def localization(vectors: np.ndarray) -> np.ndarray:
    """(k, C, H, W) -> (k, 4): spatial support, spectral support, orientation coherence, scale."""
    k, _, h, w = vectors.shape
    v = vectors.astype(np.float64)
    p = (v ** 2).sum(1).reshape(k, -1)
    p /= np.maximum(p.sum(1, keepdims=True), 1e-300)
    spec = (np.abs(np.fft.fft2(v)) ** 2).sum(1)
    q = spec.reshape(k, -1) / np.maximum(spec.reshape(k, -1).sum(1, keepdims=True), 1e-300)
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    q2 = q.reshape(k, h, w)
    mxx, myy, mxy = (q2 * fx * fx).sum((1, 2)), (q2 * fy * fy).sum((1, 2)), (q2 * fx * fy).sum((1, 2))
    tr, det = mxx + myy, mxx * myy - mxy ** 2
    gap = np.sqrt(np.maximum(tr ** 2 / 4 - det, 0.0))
    coherence = np.where(tr > 0, 2 * gap / np.where(tr > 0, tr, 1.0), 0.0)
    radius = (q2 * np.sqrt(fx ** 2 + fy ** 2)).sum((1, 2))
    return np.stack([1.0 / (h * w * (p ** 2).sum(1)), 1.0 / (h * w * (q ** 2).sum(1)), coherence, radius], 1)


def random_localization(shape: tuple, n: int, seed: int) -> np.ndarray:
    """The localization measures of n i.i.d. Gaussian vectors of ``shape`` (C, H, W) -> (n, 4)."""
    rng = np.random.default_rng(seed + 104729)
    return localization(rng.standard_normal((n, *shape)))


def localization_metrics(top: np.ndarray, rand: np.ndarray) -> dict:
    """Means of the measures for the top singular vectors and for random vectors; the scale spread is
    the coefficient of variation of the spectral radius across vectors (multi-scale -> large)."""
    out = {}
    for i, name in enumerate(MEASURES[:3]):
        out[f"sv_{name}"] = float(top[:, i].mean())
        out[f"random_{name}"] = float(rand[:, i].mean())
    for prefix, arr in (("sv", top), ("random", rand)):
        out[f"{prefix}_scale_spread"] = float(arr[:, 3].std() / max(arr[:, 3].mean(), 1e-12))
    return out


def centroid_offset(rows: np.ndarray, pixels: list[tuple[int, int]], out_hw: tuple[int, int]) -> np.ndarray:
    """Distance (input pixels) from each row's energy centroid to the clicked output pixel mapped to
    input coordinates; a large offset is the paper's "copy-move". rows (R, C, H, W) -> (R,)."""
    _, _, h, w = rows.shape
    e = (rows.astype(np.float64) ** 2).sum(1)
    tot = np.maximum(e.sum((1, 2)), 1e-300)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    cy, cx = (e * yy).sum((1, 2)) / tot, (e * xx).sum((1, 2)) / tot
    sy, sx = h / out_hw[0], w / out_hw[1]
    ty = np.array([(r + 0.5) * sy - 0.5 for r, _ in pixels])
    tx = np.array([(c + 0.5) * sx - 0.5 for _, c in pixels])
    return np.sqrt((cy - ty) ** 2 + (cx - tx) ** 2)
