"""Which layers a model has, at what input size each runs, which BatchNorm folds into which conv, and the
network's Lipschitz bound propagated through its traced graph.

- :func:`discover`: one forward pass of a zero input of the card's shape with forward hooks (inside
  ``removable``, so none survive an error) records every Conv1d/Conv2d/Linear with its input size and every
  pooling layer's input/output size; which BatchNorm reads a conv's output (and only it) comes from the
  traced graph (:func:`analyzers._shared.batchnorm.bn_after_layers`, the detector lrp merges with).
- :func:`lipschitz_bound`: propagates Lipschitz constants (l2 norm) through the ``torch.fx`` graph:
  a layer multiplies its input's constant by its spectral norm; ``a + b`` adds constants, ``cat`` adds
  them in quadrature; ReLU-type activations, dropout (eval), flatten and reshapes are 1-Lipschitz;
  max-pooling is sqrt(overlap)-Lipschitz (overlap = windows per input sample), average pooling
  sqrt(overlap) / sqrt(window). With skip connections this is still a valid bound (unlike the plain
  product). An operation it does not know makes the bound "not certified" (infinite) and names it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
from torch import nn

from analyzers._shared.batchnorm import bn_affine, bn_after_layers
from analyzers._shared.tracing import ADD_FUNCS, MUL_FUNCS, trace
from workbench.core.errors import ComputeError
from workbench.core.hooks import removable

CONV = (nn.Conv1d, nn.Conv2d)
POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
BN = (nn.BatchNorm1d, nn.BatchNorm2d)
ONE_LIPSCHITZ = (nn.ReLU, nn.ReLU6, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity, nn.Flatten, nn.Tanh,
                 nn.Softsign, nn.Hardtanh, nn.ELU, nn.Unflatten)
# max |slope| of smooth activations (Lipschitz constants)
ACT_CONST = {nn.Sigmoid: 0.25, nn.SiLU: 1.0998, nn.GELU: 1.1289, nn.Hardswish: 1.5, nn.Mish: 1.0886,
             nn.Softplus: 1.0, nn.Hardsigmoid: 1 / 6}
SAME = {"flatten", "reshape", "view", "contiguous", "permute", "transpose", "squeeze", "unsqueeze", "clone",
        "relu", "relu_", "relu6", "dropout", "float", "to", "detach", "hardtanh", "tanh", "identity"}
IGNORE = {"size", "dim", "shape", "getattr", "getitem_shape"}


@dataclass
class LayerInfo:
    """One parameterised layer: ``kind`` "conv" | "linear", ``input_size`` the spatial size of its input
    ((n,) or (h, w); () for linear), ``bn`` the name of a BatchNorm reading its output directly (or "")."""

    name: str
    kind: str
    module: nn.Module
    input_size: tuple = ()
    bn: str = ""
    order: int = 0


@dataclass
class Discovery:
    layers: list[LayerInfo] = field(default_factory=list)
    shapes: dict = field(default_factory=dict)  # module name -> (input shape, output shape) for pools / BN


def discover(module: nn.Module, input_shape: tuple, device: str = "cpu") -> Discovery:
    """Run one zero input (1, *input_shape) through the model with hooks that record what runs where."""
    found = Discovery()
    infos: dict[str, LayerInfo] = {}

    def hook(name, mod):
        def fn(m, inp, out):
            x = inp[0] if inp else None
            if isinstance(m, (*CONV, nn.Linear)) and name not in infos:
                size = tuple(x.shape[2:]) if isinstance(m, CONV) else ()
                infos[name] = LayerInfo(name, "linear" if isinstance(m, nn.Linear) else "conv", m, size,
                                        order=len(infos))
            if isinstance(m, (*POOL, *BN)) and x is not None:
                found.shapes[name] = (tuple(x.shape), tuple(out.shape))
        return fn

    handles: list = []
    with removable(handles), torch.no_grad():
        for name, mod in module.named_modules():
            if not list(mod.children()):
                handles.append(mod.register_forward_hook(hook(name, mod)))
        dtype = next(module.parameters()).dtype
        try:
            module(torch.zeros((1, *input_shape), dtype=dtype, device=device))
        except (RuntimeError, ValueError, TypeError) as e:
            raise ComputeError(f"a zero input of shape {tuple(input_shape)} does not run through the model "
                               f"({str(e).splitlines()[0][:120]})", "check the card's input_shape") from None
    found.layers = sorted(infos.values(), key=lambda i: i.order)
    bns = _conv_bns(module)
    for li in found.layers:
        li.bn = bns.get(li.name, "")
    return found


def _conv_bns(module: nn.Module) -> dict[str, str]:
    """conv name -> the BatchNorm that reads its output and nothing else reads it; {} if untraceable
    (no fold is then claimed: each BatchNorm keeps its own factor in the plain product)."""
    try:
        traced = trace(module)
    except Exception:  # noqa: BLE001 - fx raises many types on data-dependent control flow
        return {}
    return bn_after_layers(traced.graph, traced.modules(), producers=CONV).after


def bn_scale(bn: nn.Module) -> torch.Tensor:
    """Per-channel factor gamma / sqrt(running_var + eps) of an eval-mode BatchNorm, (C,) float64."""
    return bn_affine(bn)[0]


def _pool_factor(mod: nn.Module, shapes: tuple | None) -> float:
    """Lipschitz constant of a pooling layer from its kernel/stride or its recorded in/out sizes."""
    nd = 1 if "1d" in type(mod).__name__ else 2
    if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        if shapes is None:
            return 1.0
        (i_shape, o_shape) = shapes
        ins, outs = i_shape[-nd:], o_shape[-nd:]
        if any(i % o for i, o in zip(ins, outs, strict=True)):
            return 1.0  # uneven windows: the crude bound (<= 1 holds for both max and average)
        window = math.prod(i // o for i, o in zip(ins, outs, strict=True))
        return 1.0 if "Max" in type(mod).__name__ else 1.0 / math.sqrt(window)
    k = mod.kernel_size if isinstance(mod.kernel_size, tuple) else (mod.kernel_size,) * nd
    s = mod.stride if isinstance(mod.stride, tuple) else (mod.stride or mod.kernel_size,) * nd
    if isinstance(s, tuple) and len(s) < nd:
        s = s * nd
    d = getattr(mod, "dilation", 1)
    d = d if isinstance(d, tuple) else (d,) * nd
    overlap = math.prod(math.ceil((dd * (kk - 1) + 1) / ss) for kk, ss, dd in zip(k, s, d, strict=False))
    if "Max" in type(mod).__name__:
        return math.sqrt(overlap)
    return math.sqrt(overlap / math.prod(k))


def _module_factor(name: str, mod: nn.Module, sigma: dict, folded_bns: set, shapes: dict) -> float | None:
    """Lipschitz factor of one leaf module, or None if unknown."""
    if name in sigma:
        return sigma[name]
    if isinstance(mod, BN):
        return 1.0 if name in folded_bns else float(bn_scale(mod).abs().max())
    if isinstance(mod, POOL):
        return _pool_factor(mod, shapes.get(name))
    if isinstance(mod, ONE_LIPSCHITZ):
        return 1.0
    if isinstance(mod, nn.LeakyReLU):
        return max(1.0, abs(mod.negative_slope))
    return ACT_CONST.get(type(mod))


def _fn_name(node) -> str:
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _propagate(node, const: dict, mods: dict, sigma: dict, folded_bns: set, shapes: dict):
    """Lipschitz constant of one fx node from its inputs' constants; None = not a tensor; inf = unknown."""
    args = [a for a in node.all_input_nodes]
    ins = [const[a] for a in args if const.get(a) is not None]
    base = max(ins) if ins else 0.0
    if node.op == "placeholder":
        return 1.0
    if node.op == "get_attr":
        return 0.0
    if node.op == "output":
        return base
    if node.op == "call_module":
        f = _module_factor(node.target, mods[node.target], sigma, folded_bns, shapes)
        return math.inf if f is None else f * base
    name = _fn_name(node)
    if name in IGNORE or (name == "getitem" and not ins):
        return None
    if node.target in ADD_FUNCS or node.target in (operator.sub, operator.isub, torch.sub):
        return sum(ins)
    if node.target in MUL_FUNCS or node.target is operator.truediv:
        consts = [a for a in node.args if isinstance(a, (int, float))]
        return abs(consts[0]) * base if len(ins) == 1 and consts and node.target is not operator.truediv \
            else (base / abs(consts[0]) if len(ins) == 1 and consts else math.inf)
    if node.target in (torch.cat, torch.concat):
        return math.sqrt(sum(c * c for c in ins))
    if name in SAME or name.startswith(("adaptive_avg_pool", "avg_pool", "mean")):
        return base  # reshapes, ReLU-type, averages (<= 1-Lipschitz)
    return math.inf


def lipschitz_bound(module: nn.Module, sigma: dict[str, float], folds: dict[str, str],
                    shapes: dict) -> tuple[float, bool, str]:
    """Lipschitz bound of the whole network (l2 -> l2) from per-layer spectral norms ``sigma`` (a conv in
    ``folds`` {conv: bn} with its BatchNorm folded in). Returns (bound, certified, note); falls back to the
    plain product over layers (certified False) when the graph cannot be traced, holds an operation it does
    not know, or a folded conv's output is also read by something other than its BatchNorm."""
    folded_bns = set(folds.values())
    product = math.prod(sigma.values()) if sigma else 0.0
    try:
        gm = trace(module).gm
    except Exception as e:  # noqa: BLE001 - any tracing failure means: fall back, say why
        return product, False, f"graph not traceable ({type(e).__name__}); plain product of layer norms"
    mods = dict(gm.named_modules())
    by_target = {n.target: n for n in gm.graph.nodes if n.op == "call_module"}
    shared = [c for c in folds if c in by_target and len(by_target[c].users) != 1]
    if shared:
        return product, False, f"{shared[0]} feeds more than its BatchNorm: plain product, not a bound"
    const: dict = {}
    unknown = []
    for node in gm.graph.nodes:
        const[node] = _propagate(node, const, mods, sigma, folded_bns, shapes)
        if const[node] == math.inf and not unknown:
            unknown.append(node.target if node.op == "call_module" else _fn_name(node))
        if node.op == "output":
            out = const[node]
    if unknown:
        return product, False, f"unknown operation {unknown[0]!s}: plain product of layer norms, not a bound"
    return out, True, "propagated through the traced graph (layer norms, pooling factors, skip connections)"
