"""LRP pieces shared by the ``lrp`` and ``lrp_pruning`` analyzers (zennit underneath).

* :func:`make_composite`: the composites users know (EpsilonPlusFlat, EpsilonGammaBox,
  EpsilonAlpha2Beta1) and the setting of Yeom et al. ("paper": alpha1-beta0 on convolutions with the
  bias ignored, epsilon on dense layers, z^B on the first layer).
* :func:`plan_canonization`: canonizers chosen from the model's traced structure: every BatchNorm that
  directly follows a convolution / linear layer is merged into it exactly (BN eps set to 0 so the
  merged BN is the identity), residual additions become zennit ``Sum`` modules (zennit's own ResNet
  block canonizers for torchvision ResNets, a traced-graph rewrite for any other model), and whatever
  cannot be canonized is listed as a problem instead of being hidden.
* :class:`RelevanceTape`: records the tensors entering and leaving chosen modules, so that one
  ``torch.autograd.grad`` call returns the relevance at every layer boundary.

zennit canonizers change parameters in place and swap ``forward`` methods: callers work on a private
copy of the model (``mutates_model = True``) and leave every composite in a ``with`` block.

zennit (and ``analyzers._shared.canonizers``, built on it) is imported inside the functions that build rules,
trace or canonize, never with this module: zennit imports torchvision, ~1.2 s of CPU, and the analyzer classes
that import this module (lrp, lrp_pruning) must load without it for ``workbench analyzers``, the app's first
page and ``workbench run`` of another analyzer (issue 21; tests/cli/test_startup.py checks it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

from analyzers._shared.batchnorm import bn_after_layers
from analyzers._shared.tracing import ADD_FUNCS, ADD_METHODS, MUL_FUNCS, MUL_METHODS, calls, is_flatten
from analyzers._shared.tracing import trace as trace_leaves

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "paper")
_GATES = {torch.sigmoid, torch.tanh, torch.exp, torch.softmax, nn.functional.sigmoid, nn.functional.tanh,
          nn.functional.softmax, nn.functional.silu, nn.functional.gelu, nn.functional.hardswish,
          nn.functional.relu6, nn.functional.hardtanh}


# ---- composites ------------------------------------------------------------------------------

def make_composite(name: str, low: torch.Tensor, high: torch.Tensor, *, epsilon: float = 1e-6,
                   stabilizer: float = 1e-6, canonizers: list | None = None):
    """A zennit composite. ``low``/``high``: the input domain's bounds for z^B, broadcastable to the
    input (e.g. (1, C, 1, 1) for images). The first Linear or Conv layer gets the first-layer rule."""
    from zennit.composites import (
        EpsilonAlpha2Beta1,
        EpsilonGammaBox,
        EpsilonPlusFlat,
        SpecialFirstLayerMapComposite,
        layer_map_base,
    )
    from zennit.rules import AlphaBeta, Epsilon, ZBox
    from zennit.types import Convolution
    from zennit.types import Linear as AnyLinear

    canonizers = canonizers or []
    box = ZBox(low=low, high=high, stabilizer=stabilizer)
    if name == "epsilon_plus_flat":
        return EpsilonPlusFlat(epsilon=epsilon, stabilizer=stabilizer, canonizers=canonizers)
    if name == "epsilon_gamma_box":
        return EpsilonGammaBox(low=low, high=high, epsilon=epsilon, stabilizer=stabilizer,
                               first_map=[(nn.Linear, box)], canonizers=canonizers)
    if name == "epsilon_alpha2_beta1":
        return EpsilonAlpha2Beta1(epsilon=epsilon, stabilizer=stabilizer, canonizers=canonizers)
    if name == "paper":  # Yeom et al.: z^B first, alpha1-beta0 (bias ignored) on convs, epsilon on dense
        layer_map = layer_map_base(stabilizer) + [
            (Convolution, AlphaBeta(alpha=1.0, beta=0.0, stabilizer=stabilizer, zero_params=["bias"])),
            (nn.Linear, Epsilon(epsilon=epsilon))]
        return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=[(AnyLinear, box)],
                                             canonizers=canonizers)
    raise ValueError(f"unknown composite {name!r}")


@dataclass
class InputBounds:
    """The input domain for z^B: ``low``/``high`` shaped (1, C, 1, ...) like the input (N, C, ...) or (1, D)
    for vectors. ``source``: "card preprocessing" (the domain a pixel can take) or "data range" (the batch's
    own per-channel range); ``note``: why the card's preprocessing was not used, when it should have been."""

    low: torch.Tensor
    high: torch.Tensor
    source: str
    note: str = ""


BOX_COMPOSITES = ("epsilon_gamma_box", "paper")  # the composites whose first layer uses z^B (the bounds)


def input_bounds(card, x: torch.Tensor) -> InputBounds:
    """Per-channel input domain for z^B (see :class:`InputBounds`).

    Images: the card's preprocessing of an all-black and an all-white picture (the domain a pixel can
    take), widened to include the batch. Other kinds: the batch's own per-channel range. An image card
    whose preprocessing fails on a flat picture falls back to the data range and says so in ``note``."""
    dims = [0] + list(range(2, x.dim()))
    low, high = x.amin(dim=dims, keepdim=True).detach(), x.amax(dim=dims, keepdim=True).detach()
    if card is None or card.kind != "image2d":
        return InputBounds(low, high, "data range")
    import numpy as np

    from workbench.core.sample import Sample

    try:
        side = tuple(card.input_shape[1:])
        ends = [torch.as_tensor(np.asarray(card.preprocess(Sample(f"bounds:{v}", "image",
                                                                   np.full((*side, 3), v, np.float32)))))
                for v in (0.0, 1.0)]
        ends = [e.to(x)[None].amin(dim=dims, keepdim=True) for e in ends]
    except Exception as e:  # noqa: BLE001 - any failure of a card's own code means: fall back, and say so
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        return InputBounds(low, high, "data range", f"{card.id}'s preprocessing of a flat picture failed "
                           f"({type(e).__name__}: {first}); the z^B bounds are the batch's own range")
    low, high = torch.minimum(low, torch.minimum(*ends)), torch.maximum(high, torch.maximum(*ends))
    return InputBounds(low.detach(), high.detach(), "card preprocessing")


@contextlib.contextmanager
def applied(composite, model: nn.Module) -> Iterator[nn.Module]:
    """Register ``composite`` (canonizers, then rule hooks) on ``model`` for the block; everything is
    removed and every canonizer reverted on exit, also when registering itself failed half-way
    (zennit's own context would skip the clean-up then)."""
    try:
        composite.register(model)
        yield model
    finally:
        composite.remove()


# ---- canonization ----------------------------------------------------------------------------

def trace(model: nn.Module) -> fx.Graph:
    """The model's graph with layers (and zennit ``Sum`` modules) as ``call_module`` nodes; not owned by a
    GraphModule, so it can be rewritten with new modules. Raises on untraceable control flow."""
    from zennit.layer import Sum

    return trace_leaves(model, extra_leaves=(Sum,)).graph


@dataclass
class Canonization:
    """What the canonizers will do (``notes``) and what they cannot fix (``problems``)."""

    canonizers: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_activation(node) -> bool:
    return isinstance(node, fx.Node) and node.op != "get_attr"


_CHANNELWISE = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.Flatten, nn.Dropout, nn.Identity)


def _right_target(bn_node: fx.Node, modules: dict) -> str | None:
    """The Linear a BatchNorm's output reaches through channel-wise linear steps only (None otherwise)."""
    node = bn_node
    while len(node.users) == 1:
        (node,) = node.users
        m = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(m, nn.Linear):
            return node.target if m.in_features % modules[bn_node.target].num_features == 0 else None
        if not (isinstance(m, _CHANNELWISE) or is_flatten(node, modules)):
            return None
    return None


def _rewrite_adds(graph: fx.Graph) -> int:
    """Route each activation + activation through ``canonizer_sums.<i>``; returns how many."""
    adds = [n for n in graph.nodes if calls(n, ADD_FUNCS, ADD_METHODS)
            and len(n.args) == 2 and all(_is_activation(a) for a in n.args)]
    for i, node in enumerate(adds):
        with graph.inserting_before(node):
            stacked = graph.call_function(torch.stack, (list(node.args),), {"dim": -1})
            summed = graph.call_module(f"canonizer_sums.{i}", (stacked,))
        node.replace_all_uses_with(summed)
        graph.erase_node(node)
    graph.lint()
    return len(adds)


def _torchvision_blocks(model: nn.Module) -> bool:
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return any(isinstance(m, (BasicBlock, Bottleneck)) for m in model.modules())


def _scan_problems(graph: fx.Graph) -> list[str]:
    problems = []
    for node in graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        if calls(node, MUL_FUNCS, MUL_METHODS) and len(node.args) == 2 \
                and all(_is_activation(a) for a in node.args):
            problems.append(f"a multiplicative gate ({node.name}) has no conservative LRP rule")
        elif node.target in _GATES or node.target in ("sigmoid", "tanh", "softmax", "exp"):
            problems.append(f"the functional non-linearity {node.name} is not a module, so no rule covers it")
    return problems


def plan_canonization(model: nn.Module) -> Canonization:
    """Choose canonizers for ``model`` from its traced structure (nothing is changed yet)."""
    from zennit.types import Linear as AnyLinear

    from analyzers._shared.canonizers import (
        ExactNamedMergeBatchNorm,
        ExactSequentialMergeBatchNorm,
        GraphSumCanonizer,
        RightMergeBatchNorm,
    )

    plan = Canonization()
    try:
        graph = trace(model)
    except Exception as e:  # noqa: BLE001 - fx raises many types on data-dependent control flow
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        plan.canonizers.append(ExactSequentialMergeBatchNorm())
        plan.problems.append(f"the model could not be traced ({first}); BatchNorm merges and residual "
                             "additions are unverified")
        return plan
    modules = dict(model.named_modules())
    found = bn_after_layers(graph, modules, producers=AnyLinear)
    pairs, lonely = [((layer,), bn) for layer, bn in found.after.items()], found.lonely
    if pairs:
        plan.canonizers.append(ExactNamedMergeBatchNorm(pairs))
        plan.notes.append(f"{len(pairs)} BatchNorm layer(s) merged into the preceding conv/linear")
    nodes = {n.target: n for n in graph.nodes if n.op == "call_module"}
    right = [(name, _right_target(nodes[name], modules)) for name in lonely]
    if any(t for _, t in right):
        plan.canonizers.append(RightMergeBatchNorm([(b, t) for b, t in right if t]))
        plan.notes.append(f"{sum(1 for _, t in right if t)} BatchNorm layer(s) after a non-linearity folded "
                          "into the next linear layer")
    plan.problems += [f"BatchNorm {name} neither follows a conv/linear layer nor reaches a linear layer through "
                      "channel-wise steps, so it cannot be merged" for name, t in right if not t]
    plan.problems += _scan_problems(graph)
    if _torchvision_blocks(model):
        from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer

        plan.canonizers += [ResNetBottleneckCanonizer(), ResNetBasicBlockCanonizer()]
        plan.notes.append("torchvision ResNet blocks: residual additions through zennit Sum modules")
    else:
        n = _rewrite_adds(graph)
        if n:
            plan.canonizers.append(GraphSumCanonizer(graph, n))
            plan.notes.append(f"{n} residual addition(s) rewritten as zennit Sum modules (Norm rule)")
    return plan


# ---- relevance read-out ------------------------------------------------------------------------

class RelevanceTape:
    """Record each call of the named modules: a private view of its first input and its output.

    Use as ``with RelevanceTape(model, names) as tape:``, run the forward, then
    ``torch.autograd.grad(out, tape.tensors(), ...)``: inside a zennit composite the gradient of
    ``tape.inputs[i]`` is the relevance that call passed down (its own share only: the view is private)
    and that of ``tape.outputs[i]`` is the relevance that reached its output. The pre-hook is
    prepended so it runs before zennit's; neither hook changes a value. Hooks are removed on exit.
    """

    def __init__(self, model: nn.Module, names: list[str], inputs: bool = True) -> None:
        self.model, self.names, self.want_inputs = model, list(names), inputs
        self.calls: list[str] = []
        self.inputs: list[torch.Tensor] = []
        self.sources: list[torch.Tensor | None] = []  # the tensor each input view was taken of (kept alive)
        self.outputs: list[torch.Tensor] = []
        self._handles: list = []

    def __enter__(self) -> RelevanceTape:
        modules = dict(self.model.named_modules())
        try:
            for name in self.names:
                m = modules[name]
                if self.want_inputs:
                    self._handles.append(m.register_forward_pre_hook(self._pre, prepend=True))
                self._handles.append(m.register_forward_hook(self._make_post(name)))
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _pre(self, module, args):
        if not args or not isinstance(args[0], torch.Tensor) or not args[0].requires_grad:
            self._pending = None
            return None
        view = args[0].view_as(args[0])
        self._pending = (args[0], view)
        return (view, *args[1:])

    def _make_post(self, name: str):
        def post(module, args, output):
            if not isinstance(output, torch.Tensor) or output.grad_fn is None:
                return None
            self.calls.append(name)
            self.outputs.append(output)
            if self.want_inputs:
                source, view = getattr(self, "_pending", None) or (None, output.new_zeros(output.shape[0], 1))
                self.sources.append(source)
                self.inputs.append(view)
            self._pending = None
            return None  # a forward hook that returns a value would replace the output

        return post

    def tensors(self) -> list[torch.Tensor]:
        return [*self.inputs, *self.outputs]


def grads_or_zeros(out: torch.Tensor, wrt: list[torch.Tensor], grad_out: torch.Tensor) -> list[torch.Tensor]:
    """``torch.autograd.grad`` with unused tensors (or ones without a graph) returned as zeros."""
    usable = [t.requires_grad for t in wrt]
    got = torch.autograd.grad(out, [t for t, u in zip(wrt, usable, strict=True) if u], grad_out,
                              allow_unused=True) if any(usable) else []
    it = iter(got)
    res = []
    for t, u in zip(wrt, usable, strict=True):
        g = next(it) if u else None
        res.append(torch.zeros_like(t) if g is None else g)
    return res
