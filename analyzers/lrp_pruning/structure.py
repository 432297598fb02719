"""Structural pruning: which units (conv filters, hidden neurons) can be removed, and removing them.

A unit is prunable when its layer's output reaches exactly the input channels of following conv /
linear layers through channel-preserving steps only (BatchNorm, activations, pooling, dropout,
flatten). Outputs that meet a residual addition, a concatenation or the model output are tied to
other tensors and stay. Removing a unit deletes the producer's output channel, the BatchNorm channel
and the consumers' input channel(s): the model really gets smaller (parameters, FLOPs, latency).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

from analyzers._shared.batchnorm import bn_after_layers
from analyzers._shared.tracing import is_flatten, trace

_PASS_MODULES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity,
                 nn.Dropout, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                 nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_PASS_FUNCS = {torch.relu, nn.functional.relu, nn.functional.dropout, nn.functional.max_pool2d,
               nn.functional.avg_pool2d, nn.functional.adaptive_avg_pool2d}


@dataclass
class PrunableLayer:
    """One layer whose output units can be removed.

    ``producer``: the Conv/Linear module whose output channels are the units. ``bns``: BatchNorms on
    those channels. ``consumers``: (module name, block) for each conv/linear reading the channels;
    ``block`` is how many input features one channel feeds (1, or the spatial size after a flatten).
    ``score_at``: the module whose output carries the units' activation (the BN right after the
    producer, else the producer).
    """

    producer: str
    units: int
    score_at: str
    bns: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)


def _is_prunable_producer(m: nn.Module) -> bool:
    if isinstance(m, nn.Linear):
        return True
    return isinstance(m, nn.modules.conv._ConvNd) and not m.transposed and m.groups == 1


def _spatial(node: fx.Node) -> int:
    shape = node.meta["tensor_meta"].shape
    size = 1
    for s in shape[2:]:
        size *= int(s)
    return size


def _follow(start: fx.Node, modules: dict, score_at: str) -> PrunableLayer | None:
    """Walk forward from a producer node; None if its channels reach anything but plain consumers.
    ``score_at``: the BatchNorm that follows the producer (the one LRP merges), else the producer."""
    layer = PrunableLayer(start.target, 0, score_at)
    stack, seen = [(u, 1, start) for u in start.users], set()
    while stack:
        node, block, prev = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        m = modules.get(node.target) if node.op == "call_module" else None
        if node.op == "call_method" and node.target == "size":
            continue
        if m is not None and (isinstance(m, nn.Linear) or (isinstance(m, nn.modules.conv._ConvNd)
                                                           and not m.transposed and m.groups == 1)):
            layer.consumers.append((node.target, block))
            continue
        if is_flatten(node, modules):
            block = block * _spatial(prev)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            layer.bns.append(node.target)
        elif not (isinstance(m, _PASS_MODULES) or (node.op == "call_function" and node.target in _PASS_FUNCS)):
            return None
        stack += [(u, block, node) for u in node.users]
    return layer if layer.consumers else None


def find_prunable(model: nn.Module, example: torch.Tensor, units: str = "auto") -> list[PrunableLayer]:
    """Prunable layers of ``model`` in forward order. ``example``: one model input (1, ...).
    ``units``: "conv" (filters), "linear" (hidden neurons), "all", or "auto" (filters if any, else
    neurons). Raises ValueError when the model cannot be traced."""
    from torch.fx.passes.shape_prop import ShapeProp  # here, not at import: see count_flops

    traced = trace(model)
    graph, modules = traced.graph, traced.modules()
    with torch.no_grad():
        ShapeProp(traced.gm).propagate(example)
    after = bn_after_layers(graph, modules).after
    out = []
    for node in graph.nodes:
        if node.op != "call_module" or not _is_prunable_producer(modules[node.target]):
            continue
        layer = _follow(node, modules, after.get(node.target, node.target))
        if layer is None:
            continue
        m = modules[layer.producer]
        layer.units = int(m.weight.shape[0])
        if layer.units >= 2:
            out.append(layer)
    convs = [ly for ly in out if isinstance(modules[ly.producer], nn.modules.conv._ConvNd)]
    if units == "conv" or (units == "auto" and convs):
        return convs
    if units in ("linear", "auto"):
        return [ly for ly in out if isinstance(modules[ly.producer], nn.Linear)]
    return out


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().clone())


def remove_units(model: nn.Module, layer: PrunableLayer, keep: torch.Tensor) -> None:
    """Keep only the output units ``keep`` (sorted int64 indices) of ``layer``: slices the producer's
    weight/bias, the BatchNorms and the consumers' input channels in place."""
    modules = dict(model.named_modules())
    p = modules[layer.producer]
    with torch.no_grad():
        p.weight = _param(p.weight[keep])
        if p.bias is not None:
            p.bias = _param(p.bias[keep])
        if isinstance(p, nn.Linear):
            p.out_features = len(keep)
        else:
            p.out_channels = len(keep)
        for name in layer.bns:
            bn = modules[name]
            if bn.affine:
                bn.weight, bn.bias = _param(bn.weight[keep]), _param(bn.bias[keep])
            if bn.track_running_stats:
                bn.running_mean, bn.running_var = bn.running_mean[keep].clone(), bn.running_var[keep].clone()
            bn.num_features = len(keep)
        for name, block in layer.consumers:
            c = modules[name]
            idx = (keep[:, None] * block + torch.arange(block, device=keep.device)).flatten()
            c.weight = _param(c.weight[:, idx])
            if isinstance(c, nn.Linear):
                c.in_features = len(idx)
            else:
                c.in_channels = len(idx)
    layer.units = len(keep)


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """Floating-point operations of one forward pass for ``example`` (1, ...), as counted by
    ``torch.utils.flop_counter.FlopCounterMode``: 2 x multiply-accumulates of every matmul and
    convolution (biases, activations, BatchNorm and pooling not counted)."""
    # imported on use: flop_counter pulls in triton (~0.2 s), which listing the analyzer classes must not pay
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(example)
    return int(counter.get_total_flops())


#: Latency protocol: batch size, warm-up passes and timed repeats; the minimum is reported because
#: on a shared CPU the noise is one-sided (other work only ever adds time), and a median of few
#: repeats once showed a pruned net 2x slower than the unpruned one.
LATENCY_BATCH, LATENCY_WARMUP, LATENCY_REPEATS = 32, 3, 20
_clock = time.perf_counter  # module attribute so a test can substitute a scripted clock


def latency_ms(model: nn.Module, batch: torch.Tensor, repeats: int = LATENCY_REPEATS,
               warmup: int = LATENCY_WARMUP) -> float:
    """Minimum wall time in milliseconds of one forward pass over ``batch`` (B, ...) under
    ``torch.inference_mode``, over ``repeats`` timed passes after ``warmup`` untimed ones."""
    sync = torch.cuda.synchronize if batch.is_cuda else (lambda: None)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(batch)
        sync()
        for _ in range(repeats):
            t = _clock()
            model(batch)
            sync()
            times.append(_clock() - t)
    return 1000.0 * min(times)
