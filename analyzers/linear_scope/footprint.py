"""Exact input footprint of the replay's rows: which input pixels output unit i can depend on at all.

A row A^T e_j of a fully-convolutional replay is zero outside the theoretical receptive field of output
unit j (Araujo et al., Distill 2019: the recurrence of :mod:`analyzers.receptive_field.box`). Rows whose
fields are disjoint can therefore share one backward pass (Jacobian compression, Curtis-Powell-Reid):
the summed cotangent's gradient, cut by each field, is every row exactly (the other rows are exact zeros
there). The recurrence is repeated here on the replay's own aten graph, because analyzers must not
import each other and because what matters is the *replay's* dependency structure (a frozen norm is
pointwise in x1); ``tests/analyzers/linear_scope`` checks it against the RF analyzer's boxes and against
the numerical support of every row.

Per spatial axis the state is (j, lo, hi) as exact fractions: unit i reads input pixels p with
``i*j + lo <= p <= i*j + hi``. Any op not listed below (reshape, attention, a global pool, a reflection
pad, ...) makes the state global, and a global output means no compression: a missing rule only costs
speed, never exactness.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction

import torch
from torch.fx.node import Node, map_arg

from analyzers.linear_scope.units import PIECEWISE, SMOOTH, is_float, packet

GLOBAL = "global"
IDENTITY = frozenset(("clone", "contiguous", "alias", "detach", "_to_copy", "lift_fresh_copy", "neg",
                      "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                      "native_layer_norm", "native_group_norm"))
POOLS = frozenset(("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
                   "avg_pool1d", "avg_pool2d", "avg_pool3d"))
UPSAMPLE = frozenset(("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
                      "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "upsample_linear1d",
                      "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d",
                      "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa"))


def _frac(v) -> Fraction:
    return Fraction(v).limit_denominator(1 << 20) if isinstance(v, float) else Fraction(v)


def _per_axis(v, k: int, default) -> list:
    """A conv / pool parameter as one value per spatial axis (ints broadcast, empty lists -> default)."""
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * k if len(v) == 1 else v


def _window(state: list, kernel: list, stride: list, pad: list, dil: list) -> list:
    """Conv / pool: output unit i reads input units i*s - p .. i*s - p + d(k-1)."""
    return [(j * s, lo - p * j, hi + (d * (kk - 1) - p) * j)
            for (j, lo, hi), kk, s, p, d in zip(state, kernel, stride, pad, dil, strict=True)]


def _union(states: list) -> list | str:
    """Elementwise op of several dependent tensors of one spatial size: the union of their fields."""
    first = states[0]
    if any(s == GLOBAL for s in states) or any(t[0] != a[0] for s in states for t, a in zip(s, first, strict=True)):
        return GLOBAL
    return [(a[0], min(s[i][1] for s in states), max(s[i][2] for s in states)) for i, a in enumerate(first)]


class _Walker:
    def __init__(self, val0: dict, dep: set, rank: int) -> None:
        self.val0, self.dep, self.rank, self.k = val0, dep, rank, rank - 2
        self.state: dict = {}

    def spatial(self, node: Node) -> tuple | None:
        v = self.val0.get(node)
        v = v[0] if isinstance(v, (tuple, list)) and v and is_float(v[0]) else v
        return tuple(v.shape[2:]) if is_float(v) and v.dim() == self.rank else None

    def deps(self, node: Node) -> list[Node]:
        out: list[Node] = []
        map_arg((node.args, node.kwargs), lambda n: out.append(n) if n in self.dep and n not in out else None)
        return out

    def rule(self, node: Node) -> list | str:
        name, deps, a = packet(node.target), self.deps(node), node.args
        if node.target is operator.getitem:
            return self.state.get(a[0], GLOBAL) if a[1] == 0 else GLOBAL
        out_sp = self.spatial(node)
        if out_sp is None or not deps:
            return GLOBAL
        src = [self.state.get(d, GLOBAL) for d in deps]
        first_only = deps == [a[0]] if a and isinstance(a[0], Node) else False
        if name in IDENTITY and first_only and self.spatial(a[0]) == out_sp:
            return src[0]
        pointwise = name in PIECEWISE or name in SMOOTH or torch.Tag.pointwise in getattr(node.target, "tags", ())
        if pointwise or name in ("where", "cat"):
            dim = a[1] if len(a) > 1 else node.kwargs.get("dim", 0)
            if name == "cat" and dim % self.rank != 1:
                return GLOBAL  # only a concatenation of channels keeps positions
            if any(self.spatial(d) != out_sp for d in deps):
                return GLOBAL  # broadcasting a pooled / reshaped dependent tensor
            return _union(src)
        if not first_only or src[0] == GLOBAL:
            return GLOBAL
        return self.local(node, name, src[0], a, out_sp)

    def local(self, node: Node, name: str, st: list, a: tuple, out_sp: tuple) -> list | str:
        k, in_sp = self.k, self.spatial(a[0])
        if in_sp is None:
            return GLOBAL
        if name == "convolution":
            if a[6]:  # transposed: not needed by the zoo; global keeps it exact
                return GLOBAL
            w = self.val0[a[1]]
            return _window(st, list(w.shape[2:]), _per_axis(a[3], k, 1), _per_axis(a[4], k, 0),
                           _per_axis(a[5], k, 1))
        if name in POOLS:
            kernel = _per_axis(a[1], k, 1)
            stride = _per_axis(a[2] if len(a) > 2 else None, k, kernel)
            pad = _per_axis(a[3] if len(a) > 3 else 0, k, 0)
            dil = _per_axis(a[4] if len(a) > 4 and name.startswith("max") else 1, k, 1)
            return _window(st, kernel, stride, pad, dil)
        if name == "pixel_shuffle":  # unit i reads unit floor(i/r), i.e. one of i/r - (r-1)/r .. i/r
            r = Fraction(int(a[1]))
            return [(j / r, lo - (r - 1) / r * j, hi) for j, lo, hi in st]
        if name == "pixel_unshuffle":
            r = int(a[1])
            return [(j * r, lo, hi + (r - 1) * j) for j, lo, hi in st]
        if name == "constant_pad_nd":
            pads = list(a[1])
            if any(pads[2 * k:]):
                return GLOBAL
            left = [pads[2 * (k - 1 - ax)] if 2 * (k - 1 - ax) < len(pads) else 0 for ax in range(k)]
            return [(j, lo - p * j, hi - p * j) for (j, lo, hi), p in zip(st, left, strict=True)]
        if name in UPSAMPLE:
            return self.upsample(st, a, in_sp, out_sp)
        return GLOBAL

    @staticmethod
    def upsample(st: list, a: tuple, in_sp: tuple, out_sp: tuple) -> list:
        """Interpolation: unit i reads source taps within 2 (cubic) units of its source coordinate, which
        lies within 1 unit of i * n_in / n_out whatever the convention (align_corners, given scales); with
        antialiasing on downsampling the kernel widens by n_in / n_out. A margin of 3 q + 1 source units
        covers all of them (a wider field is still exact, only less compressible)."""
        scales = [v for v in a[1:] if isinstance(v, (float, int)) and not isinstance(v, bool)]
        out = []
        for ax, ((j, lo, hi), n_in, n_out) in enumerate(zip(st, in_sp, out_sp, strict=True)):
            q = Fraction(n_in, n_out)
            drift = Fraction(0)
            if len(scales) == len(st) and scales[ax]:
                drift = abs(1 / _frac(scales[ax]) - q) * n_out  # the scale PyTorch may use instead of n_in/n_out
            m = 3 * max(q, 1) + 1 + drift
            out.append((j * q, lo - m * j, hi + m * j))
        return out


def footprint(nodes: list[Node], val0: dict, dep: set, input_node: Node, output_node: Node) -> list | None:
    """Per spatial axis (j, lo, hi) of the output node, or None when any op on the way is not local."""
    x0 = val0[input_node]
    if not is_float(x0) or x0.dim() < 3 or x0.shape[0] != 1:
        return None
    w = _Walker(val0, dep, x0.dim())
    w.state[input_node] = [(Fraction(1), Fraction(0), Fraction(0))] * w.k
    for node in nodes:
        if node.op == "call_function" and node in dep:
            w.state[node] = w.rule(node)
    st = w.state.get(output_node, GLOBAL)
    return None if st == GLOBAL or w.spatial(output_node) is None or any(j <= 0 for j, _, _ in st) else st


def field(fp: list, pos: tuple, in_sp: tuple) -> tuple[slice, ...] | None:
    """The input slices (one per spatial axis) output position ``pos`` can read; None when empty."""
    out = []
    for (j, lo, hi), i, n in zip(fp, pos, in_sp, strict=True):
        a, b = max(0, math.ceil(i * j + lo)), min(n - 1, math.floor(i * j + hi))
        if a > b:
            return None
        out.append(slice(a, b + 1))
    return tuple(out)
