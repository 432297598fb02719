"""Gradient probe: measure the RF of one unit by back-propagation, to cross-check the recurrence.

On a private copy truncated at the layer: every weight a small positive constant, biases zero,
BatchNorm fresh (mean 0, var 1), float64, an input of small positive constants. Every path then
carries a strictly positive gradient, so the non-zero support of d(centre unit)/d(input) is
exactly the theoretical RF. Max-pooling routes the gradient to one argmax and would shrink the
support (ResNet-50 would read 423 instead of 427), so max-pools become average pools of the same
kernel, stride and padding for the probe (Araujo et al. 2019; our methods digest, 1(d)).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from analyzers.receptive_field.box import GLOBAL, LOCAL, Box
from analyzers.receptive_field.graph import truncated

INPUT_VALUE = 0.01  # small, so clipping activations (ReLU6, hardtanh) stay in their linear range


@dataclass
class ProbeResult:
    """Measured support per spatial axis, in input px of the probe input (size ``size``)."""

    size: tuple  # probe input spatial size per axis
    lo: tuple  # first input px with a non-zero gradient, per axis
    hi: tuple  # last one
    expected_lo: tuple  # the recurrence's box for the same unit, clipped to the input
    expected_hi: tuple
    unit: tuple  # index of the probed (centre) unit per axis
    swapped: int  # number of max-pools replaced by average pools
    support: np.ndarray  # (*size) bool, non-zero gradient

    @property
    def measured(self) -> tuple:
        return tuple(h - lo + 1 for lo, h in zip(self.lo, self.hi, strict=True))

    @property
    def outside(self) -> float:
        """Largest distance (px) by which the measured support leaves the expected box (0 if inside)."""
        return float(max(0.0, *(max(a - b, c - d) for a, b, c, d in
                                zip(self.expected_lo, self.lo, self.hi, self.expected_hi, strict=True))))

    @property
    def disagreement(self) -> float:
        """Largest distance (px) between a measured and an expected box edge, over all axes."""
        return float(max(max(abs(a - b), abs(c - d)) for a, b, c, d in
                         zip(self.lo, self.expected_lo, self.hi, self.expected_hi, strict=True)))


def _set_module(root: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, new)


def _avg_for(m: nn.Module) -> nn.Module | None:
    """The average pool replacing a max pool of the same geometry (None if it has dilation)."""
    nd = int(type(m).__name__[-2])
    if isinstance(m, nn.modules.pooling._AdaptiveMaxPoolNd):
        return getattr(nn, f"AdaptiveAvgPool{nd}d")(m.output_size)
    if any(int(d) != 1 for d in np.atleast_1d(m.dilation)):
        return None
    return getattr(nn, f"AvgPool{nd}d")(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)


def swap_max_pools(gm: fx.GraphModule) -> int:
    """Replace every max pool (module or functional) by its average-pool twin, in place."""
    n = 0
    for node in gm.graph.nodes:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
                new = _avg_for(m)
                if new is not None:
                    _set_module(gm, node.target, new)
                    n += 1
        elif node.op == "call_function":
            name = getattr(node.target, "__name__", "")
            if name.startswith("max_pool") and name[-1] == "d":
                a = list(node.args) + [None] * 6
                kw = node.kwargs
                args = (a[0], a[1] if a[1] is not None else kw.get("kernel_size"),
                        a[2] if a[2] is not None else kw.get("stride"),
                        a[3] if a[3] is not None else kw.get("padding", 0),
                        a[5] if a[5] is not None else kw.get("ceil_mode", False))
                node.target, node.args, node.kwargs = getattr(F, f"avg_pool{name[-2]}d"), args, {}
                n += 1
            elif name.startswith("adaptive_max_pool"):
                node.target = getattr(F, f"adaptive_avg_pool{name[-2]}d")
                node.args, node.kwargs = node.args[:2], {}
                n += 1
    gm.recompile()
    return n


def constant_weights(module: nn.Module) -> None:
    """Positive constant weights (1/fan-in), zero biases, fresh running statistics; in place."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
                m.reset_running_stats()
            for name, p in m.named_parameters(recurse=False):
                if "bias" in name:
                    p.zero_()
                else:
                    p.fill_(1.0 / max(1, p[0].numel()) if p.dim() >= 2 else 1.0)


def probe_network(gm: fx.GraphModule, node: fx.Node, swap: bool = True) -> tuple[fx.GraphModule, int]:
    """A private float64 copy of the graph up to ``node`` with constant weights (and avg pools)."""
    sub = copy.deepcopy(truncated(gm, node))
    n = swap_max_pools(sub) if swap else 0
    constant_weights(sub)
    return sub.double().eval(), n


def probe_size(box: Box, base: tuple, extra: int = 0) -> tuple:
    """Probe input size per axis: the RF plus (2 + extra) jumps of margin, a multiple of the jump;
    the model's own size for a global layer."""
    if box.kind != LOCAL:
        return tuple(base)
    out = []
    for r, j in zip(box.r, box.j, strict=True):
        step = max(1, int(math.ceil(j)))
        n = int(math.ceil(r + (2 + extra) * step))
        out.append(max(16, int(math.ceil(n / step)) * step))
    return tuple(out)


def run_probe(net: nn.Module, box: Box, channels: int, size: tuple, swapped: int) -> ProbeResult:
    """Back-propagate from the centre unit of ``net``'s output to an input (1, channels, *size)."""
    x = torch.full((1, channels, *size), INPUT_VALUE, dtype=torch.float64, requires_grad=True)
    out = net(x)
    out = out[0] if isinstance(out, (tuple, list)) else out
    index: list = [slice(None)] * out.dim()
    unit = tuple(int(out.shape[t]) // 2 for t in box.dims)
    for t, u in zip(box.dims, unit, strict=True):
        index[t] = u
    (g,) = torch.autograd.grad(out[tuple(index)].sum(), x)
    support = (g.abs().sum((0, 1)) > 0).cpu().numpy()
    lo, hi, elo, ehi = [], [], [], []
    for a, n in enumerate(size):
        other = tuple(b for b in range(len(size)) if b != a)
        idx = np.flatnonzero(support.any(axis=other) if other else support)
        lo.append(int(idx[0]) if idx.size else -1)
        hi.append(int(idx[-1]) if idx.size else -1)
        if box.kind == GLOBAL:
            elo.append(0)
            ehi.append(n - 1)
        else:
            c = box.start[a] + unit[a] * box.j[a]
            elo.append(max(0, c - (box.r[a] - 1) / 2))
            ehi.append(min(n - 1, c + (box.r[a] - 1) / 2))
    return ProbeResult(tuple(size), tuple(lo), tuple(hi), tuple(elo), tuple(ehi), unit, swapped, support)


def clipped(res: ProbeResult, box: Box) -> bool:
    """True when the expected box of the probed unit touches the border (probe input too small)."""
    if box.kind != LOCAL:
        return False
    for a in range(len(res.size)):
        c = box.start[a] + res.unit[a] * box.j[a]
        if c - (box.r[a] - 1) / 2 < 0 or c + (box.r[a] - 1) / 2 > res.size[a] - 1:
            return True
    return False
