"""Effective receptive field (Luo et al. 2016) and RepLKNet's high-contribution area ratio.

Two aggregations of d(centre unit)/d(input) over N inputs:

* ``replknet`` (Ding et al. 2022, ``erf/visualize_erf.py``): scalar ``s = sum_c ReLU(F[:, c, H//2, W//2])``,
  keep ``ReLU(ds/dx)``, sum over colour channels, mean over the images (images with NaN skipped);
  post-processing ``log10(M + 1) / max``; area ratio = smallest centred odd square holding more than
  a fraction t of the post-processed mass. Batching does not change the map: every image's gradient
  is independent in eval mode and ReLU acts per element.
* ``luo``: scalar ``s = sum_c F[:, c, centre]``, map = mean over images of ``sum_c |ds/dx|``.

Maps are float64 numpy arrays over the input's spatial axes ((H, W) or (T,)), in input pixels.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
MASS_95 = 0.9545  # mass inside +-2 sigma of a Gaussian


# ---- inputs -----------------------------------------------------------------------------------

def resize(x: torch.Tensor, size: tuple) -> torch.Tensor:
    """(N, C, *sp) -> (N, C, *size): bicubic for images (RepLKNet resizes bicubic), linear for 1-D."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    mode = {1: "linear", 2: "bicubic", 3: "trilinear"}[len(size)]
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False)


def fill_inputs(x: torch.Tensor, size: tuple, n: int, fill: str, seed: int, flip: bool) -> tuple:
    """The N model inputs for the ERF: the given ones (resized to ``size``) then, if fewer than ``n``,
    ``augment`` (random resized crops covering 35-100 % of the area, random horizontal flips),
    ``noise`` (standard-normal inputs, as Luo et al. use for random networks) or ``repeat``.

    Returns ((n, C, *size) float32, one line saying what was used).
    """
    x = resize(x.detach().float(), size)
    n0 = x.shape[0]
    if n0 >= n:
        return x[:n], f"{n} given input(s)"
    gen = torch.Generator().manual_seed(int(seed))
    extra = n - n0
    if fill == "noise":
        noise = torch.randn((extra, *x.shape[1:]), generator=gen).to(x)
        return torch.cat([x, noise]), f"{n0} given input(s) + {extra} standard-normal inputs"
    if fill == "repeat":
        return x[torch.arange(n) % n0], f"{n0} given input(s) repeated to {n}"
    crops = [_random_crop(x[i % n0], size, gen, flip) for i in range(extra)]
    what = "random resized crops" + (" and flips" if flip else "")
    return torch.cat([x, torch.stack(crops)]), f"{n0} given input(s) + {extra} {what} of them"


def _random_crop(img: torch.Tensor, size: tuple, gen: torch.Generator, flip: bool) -> torch.Tensor:
    """One random resized crop (area 35-100 %, aspect 3/4-4/3 for 2-D) of img (C, *sp) -> (C, *size)."""
    u = torch.rand(4, generator=gen).tolist()
    area = 0.35 + 0.65 * u[0]
    if len(size) == 2:
        aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        ext = [min(size[0], max(1, round(size[0] * math.sqrt(area / aspect)))),
               min(size[1], max(1, round(size[1] * math.sqrt(area * aspect))))]
    else:
        ext = [min(s, max(1, round(s * area ** (1 / len(size))))) for s in size]
    offs = [int((s - e) * v) for s, e, v in zip(size, ext, (u[2], u[3], 0.5), strict=False)]
    crop = img[(slice(None), *[slice(o, o + e) for o, e in zip(offs, ext, strict=True)])]
    out = resize(crop[None], size)[0]
    if flip and torch.rand(1, generator=gen).item() < 0.5:
        out = out.flip(-1)
    return out


# ---- gradients ----------------------------------------------------------------------------------

def centre_scalar(out: torch.Tensor, dims: tuple, method: str) -> torch.Tensor:
    """Sum over the batch of the centre unit (index size//2 on every spatial dim), channels summed;
    ReLU'd per channel first for ``replknet``."""
    index: list = [slice(None)] * out.dim()
    for t in dims:
        index[t] = int(out.shape[t]) // 2
    centre = out[tuple(index)]
    return (F.relu(centre) if method == "replknet" else centre).sum()


def _chunk_map(net, xb: torch.Tensor, dims: tuple, method: str, counts: list, nhwc: bool = False) -> torch.Tensor:
    """(n, C, *sp) -> (1, *sp) float64: the sum of the per-image maps that are finite."""
    xb = (xb.contiguous(memory_format=torch.channels_last) if nhwc else xb).detach().requires_grad_(True)
    out = net(xb)
    out = out[0] if isinstance(out, (tuple, list)) else out
    (g,) = torch.autograd.grad(centre_scalar(out, dims, method), xb)
    maps = (F.relu(g) if method == "replknet" else g.abs()).sum(1).double()
    ok = torch.isfinite(maps.flatten(1)).all(1)
    counts.append((int(ok.sum()), int((~ok).sum())))
    return maps[ok].sum(0, keepdim=True).detach()


def input_only(net, nhwc: bool):
    """A private view of ``net`` that differentiates with respect to its input only: the module tree is copied
    shallowly and every parameter replaced by a detached one sharing its storage (``requires_grad=False``), so
    autograd records and keeps nothing for the weights (~10 % of an ERF on ResNet-18 at 224 px on 2 CPU cores).
    ``nhwc``: 4-D weights are also copied to channels-last, the layout oneDNN's CPU convolutions (forward and
    input gradient) run fastest in (another ~10-20 %). The caller's module is never changed; buffers are shared.
    Anything that is not an ``nn.Module`` is returned as it is."""
    if not isinstance(net, torch.nn.Module):
        return net
    memo: dict = {}

    def param(p):
        if p is None:
            return None
        t = p.detach()
        if nhwc and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return torch.nn.Parameter(t, requires_grad=False)

    def view(m: torch.nn.Module) -> torch.nn.Module:
        if id(m) not in memo:
            new = memo[id(m)] = copy.copy(m)
            new.__dict__["_parameters"] = {k: param(p) for k, p in m._parameters.items()}
            new.__dict__["_modules"] = {k: None if c is None else view(c) for k, c in m._modules.items()}
        return memo[id(m)]

    return view(net)


def _folded(net):
    """``net`` with every eval-mode batch norm that follows a conv folded into it (``torch.fx``'s own ``fuse``,
    on a private copy of the detached weights): the norm's forward and backward passes are memory-bound and
    cost ~10 % of an ERF on the CPU; the map changes only by float rounding (float32 ResNet-18 untrained, 50
    images: 3.5e-3 of the peak from a float64 reference, the unfolded float32 loop 1.8e-3; folding in float64
    first does not change that: the net's ReLU masks amplify any rounding). Only for a ``GraphModule``; a
    conv + norm pair in train mode (not an affine map) makes ``fuse`` refuse, and the net is used as it is."""
    if not isinstance(net, torch.fx.GraphModule):
        return net
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(input_only(net, False), no_trace=True)
    except Exception:  # noqa: BLE001 - a pattern fuse cannot handle: the unfolded net is exact anyway
        return net


@dataclass(frozen=True)
class Span:
    """The share [start, stop] of the run's progress bar a computation reports into, and its label."""

    start: float = 0.0
    stop: float = 1.0
    label: str = "ERF"


def erf_map(net, x: torch.Tensor, dims: tuple, method: str, ctx, span: Span = Span(),
            chunk: int = 0) -> tuple[np.ndarray, int, int]:
    """Mean ERF map over the inputs ``x`` (N, C, *sp), with progress and cancel between chunks (reported
    into ``span``) and the chunk halved on out-of-memory (``ctx.batched``).

    ``chunk`` > 0 fixes the images per backward pass; 0 picks it by measuring (:func:`_next_chunk`) up to
    ``ctx.batch_size``. The chunk used is left in ``ctx.batch_size``. ``net(x)`` must return the layer's
    feature map, ``dims`` its spatial dims. Returns (map (*sp) float64, images used, images skipped for
    NaN/inf).
    """
    counts: list = []
    n = int(x.shape[0])
    # channels-last only where it measured faster (oneDNN on the CPU, 2-D images); a model whose forward cannot
    # take it (a .view on the layout) falls back to the plain layout on its first chunk
    nhwc = x.device.type == "cpu" and x.dim() == 4
    base = _folded(net) if x.device.type == "cpu" else net  # folding copies the weights: where it pays off
    work = input_only(base, nhwc)
    # CPU time on the CPU (this process's work, not the other processes sharing the cores), wall on a GPU
    clock = time.process_time if x.device.type == "cpu" else time.perf_counter
    cap = max(1, min(int(ctx.batch_size), n))
    size, timings, i, parts = (min(chunk, cap) if chunk > 0 else 1), ({} if chunk <= 0 else None), 0, []
    while i < n:
        ctx.check_cancel()
        ctx.batch_size = s = min(size, n - i)
        t = clock()
        try:
            parts.append(ctx.batched(lambda xb, w=work, f=nhwc: _chunk_map(w, xb, dims, method, counts, f),
                                     x[i:i + s], report=False))
        except RuntimeError:
            if not nhwc or parts:
                raise
            nhwc, work = False, input_only(base, False)
            continue
        took = clock() - t  # _chunk_map reads counts back to the host: the device has finished
        i += s
        ctx.progress(span.start + (span.stop - span.start) * i / n, f"{span.label} {i}/{n}")
        if ctx.batch_size < s:  # out of memory: never above what fit
            cap, timings = ctx.batch_size, None
        if timings is not None and s == size:  # the last, partial chunk is not a measurement
            size = _next_chunk(timings, s, took, cap, first=len(parts) == 1)
        else:
            size = min(size, cap)
        if timings is not None and size in timings:
            timings = None  # decided
    ctx.batch_size = size
    used, skipped = sum(c[0] for c in counts), sum(c[1] for c in counts)  # successful chunks only
    total = torch.cat(parts).sum(0).cpu().numpy()
    return total / max(used, 1), used, skipped


def _next_chunk(timings: dict, size: int, took: float, cap: int, first: bool) -> int:
    """The chunk measured rather than guessed (CPU gains from batching, ~20 % on ResNet-18, peak between 2 and 16
    images and fall beyond, on a GPU they keep rising): the first chunk (one image) warms up and is not
    timed; then 1, 2, 4, ... images, each chunk part of the result, until a size is more than 3 % slower per
    image than the best so far or the cap is reached; the fastest size is returned again (a size already in
    ``timings``) once decided."""
    if first:
        return size
    timings[size] = took / size
    best = min(timings, key=timings.get)
    # keep doubling while the size is not clearly slower (3 %) than the best before it: on a loaded CPU the
    # gain of one doubling is within the noise, the gain of two is not
    if (best != size and timings[size] > 1.03 * timings[best]) or size >= cap:
        return best
    return min(2 * size, cap)


# ---- statistics -------------------------------------------------------------------------------

def log_normalised(m: np.ndarray) -> np.ndarray:
    """RepLKNet's post-processing: log10(M + 1), then divided by its maximum."""
    out = np.log10(np.asarray(m, dtype=np.float64) + 1.0)
    top = out.max() if out.size else 0.0
    return out / top if top > 0 else out


def centred_mass(post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of the total inside the centred odd window of half-width i, for i = 1 .. n//2 - 1
    (n = the first axis' size), exactly the windows RepLKNet's ``get_rectangle`` tries:
    ``data[h//2-i : h//2+1+i, w//2-i : w//2+1+i]``. Returns (sides 2i+1, fractions)."""
    h = post.shape[0]
    i = np.arange(1, max(h // 2, 1))
    total = post.sum()
    if post.ndim == 1:
        c = np.concatenate([[0.0], np.cumsum(post)])
        sums = c[np.minimum(h // 2 + 1 + i, h)] - c[np.maximum(h // 2 - i, 0)]
    else:
        w = post.shape[1]
        integ = np.pad(post.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        r0, r1 = np.maximum(h // 2 - i, 0), np.minimum(h // 2 + 1 + i, h)
        c0, c1 = np.maximum(w // 2 - i, 0), np.minimum(w // 2 + 1 + i, w)
        sums = integ[r1, c1] - integ[r0, c1] - integ[r1, c0] + integ[r0, c0]
    return 2 * i + 1, sums / total if total > 0 else np.zeros(len(i))


def area_ratios(post: np.ndarray, thresholds=THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """RepLKNet's high-contribution area ratio per threshold t: the first window whose mass exceeds
    t (strictly) gives side s and ratio s/H * s/W (s/T in 1-D). When no window before the border
    does, the ratio is reported as 1 and the side as the image size. Returns (ratios, sides)."""
    sides, frac = centred_mass(post)
    shape = post.shape
    ratios, out_sides = [], []
    for t in thresholds:
        hit = np.flatnonzero(frac > t)
        s = int(sides[hit[0]]) if hit.size else int(shape[0])
        out_sides.append(s)
        ratios.append(float(np.prod([s / n for n in shape])) if hit.size else 1.0)
    return np.array(ratios), np.array(out_sides)


def axis_std(m: np.ndarray) -> np.ndarray:
    """Standard deviation (px) of the map's mass along each axis (marginals of |m| normalised to 1)."""
    m = np.abs(np.asarray(m, dtype=np.float64))
    total = m.sum()
    out = []
    for a in range(m.ndim):
        p = m.sum(axis=tuple(b for b in range(m.ndim) if b != a)) / total if total > 0 else \
            np.zeros(m.shape[a])
        x = np.arange(m.shape[a])
        mu = (p * x).sum()
        out.append(math.sqrt(max(((x - mu) ** 2 * p).sum(), 0.0)))
    return np.array(out)


def axis_width(m: np.ndarray, mass: float = MASS_95) -> np.ndarray:
    """Width (px, odd) of the smallest window centred on the middle pixel that holds ``mass`` of each
    axis' marginal (2 x 2 sigma + 1 for a Gaussian at 95.45 %)."""
    m = np.abs(np.asarray(m, dtype=np.float64))
    total = m.sum()
    out = []
    for a in range(m.ndim):
        p = m.sum(axis=tuple(b for b in range(m.ndim) if b != a))
        n, c = len(p), len(p) // 2
        cum = np.concatenate([[0.0], np.cumsum(p)])
        half = np.arange(0, n)
        inside = cum[np.minimum(c + 1 + half, n)] - cum[np.maximum(c - half, 0)]
        hit = np.flatnonzero(inside >= mass * total) if total > 0 else np.array([], int)
        out.append(2 * int(hit[0]) + 1 if hit.size else n)
    return np.array(out, dtype=np.float64)


def erf_summary(m: np.ndarray) -> dict:
    """Everything the result shows about one mean map: post-processed map, ratios, sides, mass
    curve, per-axis std and 95 % width, central profiles (one per axis, through the centre)."""
    post = log_normalised(m)
    ratios, sides = area_ratios(post)
    curve_sides, curve_frac = centred_mass(post)
    centre = tuple(n // 2 for n in m.shape)
    profiles = [m[tuple(slice(None) if b == a else centre[b] for b in range(m.ndim))] for a in range(m.ndim)]
    return {"post": post, "ratios": ratios, "sides": sides, "curve_sides": curve_sides,
            "curve_frac": curve_frac, "std": axis_std(m), "width95": axis_width(m),
            "profiles": profiles}
