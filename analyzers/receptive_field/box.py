"""Receptive-field state of one tensor and the per-axis recurrence (Araujo et al., Distill 2019).

A :class:`Box` describes, for every spatial axis of a tensor, which input pixels one unit sees:
size ``r`` (input px), jump ``j`` (input px between adjacent units) and ``start`` (centre of unit 0
in input px, pixel-centre convention: input pixel i has centre i). Unit i covers
``[start + i*j - (r-1)/2, start + i*j + (r-1)/2]``; effective padding is ``(r-1)/2 - start``.

Pure Python, no torch: the graph walker (``rf_graph``) maps each torch op onto these functions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

LOCAL, GLOBAL, FLAT, NONE = "local", "global", "flattened", "none"
KIND_CODE = {LOCAL: 0, GLOBAL: 1, FLAT: 2, NONE: 3}


@dataclass(frozen=True)
class Box:
    """RF state of one tensor.

    ``kind``: LOCAL (a box per axis), GLOBAL (every output sees the whole input), FLAT (spatial
    dims were merged by a reshape: each element still sees a box of size ``r`` but positions are
    lost), NONE (does not depend on the input: parameters, shapes). ``dims``: tensor dim that
    holds each spatial axis (empty when unknown); ``ndim``: tensor rank. ``approx``: a fractional
    or adaptive step (upsampling, non-divisible adaptive pooling) made the numbers approximate.
    """

    kind: str
    dims: tuple = ()
    r: tuple = ()
    j: tuple = ()
    start: tuple = ()
    ndim: int = 0
    approx: bool = False

    def replace(self, **kw) -> Box:
        return dataclasses.replace(self, **kw)

    @property
    def eff_padding(self) -> tuple:
        return tuple((r - 1) / 2 - s for r, s in zip(self.r, self.start, strict=True))


def identity(ndim: int, dims: tuple) -> Box:
    """The network input: every unit sees itself (r=1, j=1, start=0)."""
    n = len(dims)
    return Box(LOCAL, dims, (1.0,) * n, (1.0,) * n, (0.0,) * n, ndim)


def make_global(b: Box, dims: tuple | None = None, ndim: int | None = None) -> Box:
    return Box(GLOBAL, b.dims if dims is None else dims, (), (), (), b.ndim if ndim is None else ndim)


def window(b: Box, params: dict[int, tuple]) -> Box:
    """A sliding window (conv, pool) over some tensor dims.

    ``params``: tensor dim -> (kernel k, stride s, left padding p, dilation d); stride may be
    fractional (adaptive pooling). Per affected axis: k' = d(k-1)+1, r += (k'-1) j,
    start += ((k'-1)/2 - p) j, j *= s.
    """
    if b.kind != LOCAL:
        return b if b.kind in (GLOBAL, NONE) else make_global(b)
    r, j, st = list(b.r), list(b.j), list(b.start)
    for a, t in enumerate(b.dims):
        if t not in params:
            continue
        k, s, p, d = params[t]
        kk = d * (k - 1) + 1
        r[a] += (kk - 1) * j[a]
        st[a] += ((kk - 1) / 2 - p) * j[a]
        j[a] *= s
    return b.replace(r=tuple(r), j=tuple(j), start=tuple(st))


def transposed_window(b: Box, params: dict[int, tuple]) -> Box:
    """A transposed conv (k, s, p, d) per tensor dim: the jump divides by s, and each output unit
    sees ceil((k'-1)/s)+1 input units (an upper bound when s does not divide k'-1)."""
    if b.kind != LOCAL:
        return b if b.kind in (GLOBAL, NONE) else make_global(b)
    r, j, st = list(b.r), list(b.j), list(b.start)
    approx = b.approx
    for a, t in enumerate(b.dims):
        if t not in params:
            continue
        k, s, p, d = params[t]
        kk = d * (k - 1) + 1
        approx = approx or (kk - 1) % s != 0
        r[a] += -(-(kk - 1) // s) * j[a]
        st[a] += (p - (kk - 1) / 2) / s * j[a]
        j[a] /= s
    return b.replace(r=tuple(r), j=tuple(j), start=tuple(st), approx=approx)


def shift(b: Box, offsets: dict[int, float], steps: dict[int, float] | None = None) -> Box:
    """Padding (offset = -left pad) or slicing (offset = first index, step): unit 0 moves by
    ``offset`` units of the current jump; the size is unchanged."""
    if b.kind != LOCAL:
        return b
    steps = steps or {}
    st, j = list(b.start), list(b.j)
    for a, t in enumerate(b.dims):
        st[a] += offsets.get(t, 0) * j[a]
        j[a] *= steps.get(t, 1)
    return b.replace(start=tuple(st), j=tuple(j))


def footprint(n_in: int, n_out: int, mode: str, align_corners: bool) -> tuple:
    """First and last input index each output index of an interpolation reads (numpy (n_out,) each),
    as PyTorch computes them; 'pixel_shuffle' reads floor(o / f) like 'nearest'."""
    import numpy as np

    o = np.arange(n_out, dtype=np.float64)
    u = n_in / n_out
    if mode in ("nearest", "pixel_shuffle"):
        src = np.minimum(np.floor(o * u), n_in - 1)
        return src, src
    if mode == "nearest-exact":
        src = np.minimum(np.floor((o + 0.5) * u), n_in - 1)
        return src, src
    if mode == "area":
        return np.floor(o * u), np.ceil((o + 1) * u) - 1
    x = o * (n_in - 1) / max(n_out - 1, 1) if align_corners else (o + 0.5) * u - 0.5
    if mode != "bicubic":
        x = np.maximum(x, 0.0)
    lo = np.floor(x)
    exact = np.isclose(x, lo)  # weight 0 on the neighbour: no gradient reaches it
    if mode == "bicubic":  # the cubic kernel is 0 at the other integer offsets
        return np.where(exact, lo, lo - 1), np.where(exact, lo, lo + 2)
    return lo, np.where(exact, lo, lo + 1)


def resample(b: Box, params: dict[int, tuple]) -> Box:
    """Interpolation (interpolate, Upsample, PixelShuffle) per tensor dim ``t: (n_in, n_out, mode,
    align_corners)``. Unit o reads input indices lo(o)..hi(o) (:func:`footprint`); we fit the linear
    centre ``start + o * j * n_in/n_out`` and widen ``r`` by the largest deviation, so the box is exact
    for integer downsampling and conservative (flagged approximate) otherwise."""
    import numpy as np

    if b.kind != LOCAL:
        return b
    r, j, st = list(b.r), list(b.j), list(b.start)
    approx = b.approx
    for a, t in enumerate(b.dims):
        if t not in params or params[t][0] == params[t][1] and params[t][2] != "bicubic":
            continue
        n_in, n_out, mode, align = params[t]
        lo, hi = footprint(n_in, n_out, mode, align)
        keep = (lo >= 0) & (hi <= n_in - 1)  # border units read clamped indices
        lo, hi = (lo[keep], hi[keep]) if keep.any() else (lo, hi)
        o = np.arange(n_out, dtype=np.float64)[keep] if keep.any() else np.arange(n_out, dtype=np.float64)
        u = (n_in - 1) / max(n_out - 1, 1) if align and mode not in ("nearest", "pixel_shuffle") else n_in / n_out
        off = float(np.mean((lo + hi) / 2 - o * u))
        half = float(np.max(np.maximum(np.abs(lo - o * u - off), np.abs(hi - o * u - off))))
        approx = approx or not np.allclose((lo + hi) / 2 - o * u, off)
        r[a] += 2 * half * j[a]
        st[a] += off * j[a]
        j[a] *= u
    return b.replace(r=tuple(r), j=tuple(j), start=tuple(st), approx=approx)


def union(boxes: list[Box], ndim: int) -> tuple[Box, bool]:
    """Combine the inputs of an elementwise op (add, mul, cat along channels): the output unit sees
    the union of its inputs' boxes, so the longest path decides. Lower-rank inputs broadcast from the
    right. Returns (box, aligned); ``aligned`` is False when jumps disagree (not a single box)."""
    real = [b for b in boxes if b.kind != NONE]
    if not real:
        return Box(NONE, ndim=ndim), True
    shifted = [b.replace(dims=tuple(t + ndim - b.ndim for t in b.dims), ndim=ndim) for b in real]
    if any(b.kind == GLOBAL for b in shifted):
        dims = next((b.dims for b in shifted if b.kind == GLOBAL and b.dims),
                    next((b.dims for b in shifted if b.dims), ()))
        return Box(GLOBAL, dims, ndim=ndim), True
    if any(b.kind == FLAT for b in shifted):
        r = max((max(b.r) for b in shifted if b.r), default=1.0)
        dims = next((b.dims for b in shifted if b.kind == FLAT and b.dims), ())
        return Box(FLAT, dims, (r,), ndim=ndim, approx=any(b.approx for b in shifted)), True
    first = shifted[0]
    if any(b.dims != first.dims for b in shifted):
        return Box(FLAT, (), (max(max(b.r) for b in shifted),), ndim=ndim, approx=True), False
    aligned = all(b.j == first.j for b in shifted)
    r, st = [], []
    for a in range(len(first.dims)):
        lo = min(b.start[a] - (b.r[a] - 1) / 2 for b in shifted)
        hi = max(b.start[a] + (b.r[a] - 1) / 2 for b in shifted)
        r.append(hi - lo + 1)
        st.append((lo + hi) / 2)
    j = tuple(max(b.j[a] for b in shifted) for a in range(len(first.dims)))
    return first.replace(r=tuple(r), start=tuple(st), j=j,
                         approx=not aligned or any(b.approx for b in shifted)), aligned


def remap_reshape(b: Box, in_shape: tuple, out_shape: tuple) -> Box:
    """A reshape/view/flatten/squeeze. A spatial dim survives when an output dim has the same size and
    element stride (same memory layout); one merged into a bigger output dim makes the state FLAT
    (``dims`` then name the merged dims); one split over several dims loses its position."""
    if b.kind == NONE:
        return b.replace(ndim=len(out_shape))
    sin, sout = _suffix(in_shape), _suffix(out_shape)
    new, merged = [], False
    for t in b.dims:
        lo, hi = sin[t], sin[t] * int(in_shape[t])
        exact = [o for o in range(len(out_shape)) if sout[o] == lo and sout[o] * int(out_shape[o]) == hi]
        cont = [o for o in range(len(out_shape))
                if out_shape[o] > 1 and sout[o] <= lo and hi <= sout[o] * int(out_shape[o])]
        if not exact and int(in_shape[t]) == 1:  # a size-1 spatial dim squeezed away
            return Box(GLOBAL, (), ndim=len(out_shape)) if b.kind == GLOBAL else \
                Box(FLAT, (), (max(b.r),), ndim=len(out_shape), approx=b.approx)
        if exact or cont:
            new.append((exact or cont)[0])
            merged = merged or not exact
            continue
        if b.kind == GLOBAL:
            return Box(GLOBAL, (), ndim=len(out_shape))
        return Box(FLAT, (), (max(b.r),), ndim=len(out_shape), approx=b.approx)
    if merged and b.kind == LOCAL:
        return Box(FLAT, tuple(new), (max(b.r),), ndim=len(out_shape), approx=b.approx)
    return b.replace(dims=tuple(new), ndim=len(out_shape))


def _suffix(shape: tuple) -> list[int]:
    out, p = [], 1
    for s in reversed(shape):
        out.append(p)
        p *= int(s)
    return out[::-1]


def permute(b: Box, order: tuple) -> Box:
    """Dims are reordered: output dim i is input dim order[i]."""
    order = tuple(o % b.ndim for o in order) if b.ndim else tuple(order)
    return b.replace(dims=tuple(order.index(t) for t in b.dims))


def drop_dims(b: Box, removed: list[int], keepdim: bool) -> Box:
    """Reduce over ``removed`` dims (mean, sum, amax): a spatial dim of size > 1 among them makes the
    output global; otherwise surviving dims shift down unless ``keepdim``."""
    if b.kind == NONE:
        return b
    hit = [t for t in b.dims if t in removed]
    ndim = b.ndim if keepdim else b.ndim - len(removed)
    if hit:
        return Box(GLOBAL, b.dims if keepdim else (), ndim=ndim)
    dims = b.dims if keepdim else tuple(t - sum(1 for x in removed if x < t) for t in b.dims)
    return b.replace(dims=dims, ndim=ndim)


def insert_dim(b: Box, at: int) -> Box:
    """A new size-1 dim at ``at`` (unsqueeze, stack): later dims shift up."""
    return b.replace(dims=tuple(t + 1 if t >= at else t for t in b.dims), ndim=b.ndim + 1)
