"""BatchNorm helpers shared by lrp (merging BatchNorm into the layer before it), lrp_pruning (scoring
units after their BatchNorm) and kernel_spectra (folding BatchNorm into a conv's spectral norm).

:func:`bn_after_layers` is the one answer to "which BatchNorm follows which layer": in the traced graph
(:func:`analyzers._shared.tracing.trace`), a BatchNorm whose input is the output of a conv / linear
layer that feeds nothing else. Only then is ``bn(layer(x))`` one affine layer, so merging or folding is
exact; any other BatchNorm is "lonely".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

PRODUCERS = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass
class BatchNormPairs:
    """``after``: layer name -> name of the BatchNorm reading only its output; ``lonely``: BatchNorms
    that follow no such layer (after a non-linearity, an addition, the input...), in graph order."""

    after: dict[str, str] = field(default_factory=dict)
    lonely: list[str] = field(default_factory=list)


def bn_after_layers(graph: fx.Graph, modules: dict, producers: tuple = PRODUCERS) -> BatchNormPairs:
    """Pair every BatchNorm call in ``graph`` with the ``producers`` layer it directly follows.

    ``modules``: the traced model's ``dict(named_modules())``. A layer called more than once, or one
    whose output also feeds another node, is not paired (its BatchNorm is lonely)."""
    out = BatchNormPairs()
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1
                and isinstance(modules.get(src.target), producers) and calls[src.target] == 1):
            out.after[src.target] = node.target
        else:
            out.lonely.append(node.target)
    return out


def bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = scale * x + shift`` per channel: ``scale = gamma / sqrt(var + eps)``,
    ``shift = beta - mean * scale``; (C,) each, float64, detached. Missing affine parameters count as
    gamma = 1, beta = 0; missing running statistics as mean 0, var 1."""
    dev = next((t.device for t in (bn.weight, bn.running_var) if t is not None), None)
    ones = torch.ones(bn.num_features, dtype=torch.float64, device=dev)
    var = bn.running_var.detach().double() if bn.running_var is not None else ones
    mean = bn.running_mean.detach().double() if bn.running_mean is not None else torch.zeros_like(ones)
    gamma = bn.weight.detach().double() if bn.weight is not None else ones
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(ones)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale
