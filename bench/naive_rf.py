"""The naive way to get every layer's theoretical receptive field, the peer of the RF row when TorchLens
is not installed: run one real forward with a forward hook on every leaf module (as TorchLens and most
hook-based tools do), log each call's module in execution order, then apply the size/jump recurrence to
the convolution and pooling layers in that order. It is also what the workbench did before the fx graph
(and is wrong on residual branches, which is why the analyzer walks the graph: here it is timed only)."""

from __future__ import annotations

import torch
from torch import nn


def _first(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def naive_rf(module: nn.Module, input_shape: tuple) -> list[tuple[str, float, float]]:
    """(module path, RF size, jump) of every conv/pool call, in execution order, from a hooked forward."""
    calls: list = []
    names = {m: n for n, m in module.named_modules()}
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append((names[mod], tuple(out.shape))))
             for m in module.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            module(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
    r, j, out = 1.0, 1.0, []
    modules = dict(module.named_modules())
    for name, _shape in calls:
        m = modules[name]
        if isinstance(m, (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            k, s, d = _first(m.kernel_size), _first(m.stride or m.kernel_size), _first(getattr(m, "dilation", 1))
            r, j = r + (d * (k - 1)) * j, j * s
            out.append((name, r, j))
    return out
