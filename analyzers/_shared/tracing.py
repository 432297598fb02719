"""One torch.fx tracer at the level of leaf modules, and the graph-op vocabulary the graph walkers share
(lrp canonization, lrp_pruning structure, kernel_spectra's Lipschitz bound, receptive_field's recurrence).

:func:`trace` keeps every torch.nn module a single ``call_module`` node (fx's default) and so are
convolutions, linear layers and BatchNorms defined as subclasses in user code (fx would otherwise trace
into their ``forward`` and lose the layer); it also records which node each module call produced
(``module_out``), for walkers that report per layer. The module's parameters, hooks and mode are not
touched. LinearScope's ``make_fx`` replay is a different level (aten ops at one input) and stays there.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.fx as fx
from torch import nn

LEAF_TYPES = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)

# Graph-op vocabulary: the same Python-level operation reaches fx as a function or as a method.
ADD_FUNCS = frozenset({operator.add, operator.iadd, torch.add})
ADD_METHODS = frozenset({"add", "add_"})
MUL_FUNCS = frozenset({operator.mul, operator.imul, torch.mul})
MUL_METHODS = frozenset({"mul", "mul_"})
FLATTEN_FUNCS = frozenset({torch.flatten})
FLATTEN_METHODS = frozenset({"flatten", "view", "reshape"})


def calls(node: fx.Node, funcs: frozenset, methods: frozenset) -> bool:
    """True when ``node`` is a call of one of ``funcs`` (call_function) or ``methods`` (call_method)."""
    return (node.op == "call_function" and node.target in funcs) or \
        (node.op == "call_method" and node.target in methods)


def is_flatten(node: fx.Node, modules: dict) -> bool:
    """``torch.flatten`` / ``x.flatten`` / ``x.view`` / ``x.reshape`` or an ``nn.Flatten`` module call."""
    if node.op == "call_module":
        return isinstance(modules.get(node.target), nn.Flatten)
    return calls(node, FLATTEN_FUNCS, FLATTEN_METHODS)


class LeafTracer(fx.Tracer):
    """fx tracer whose leaves are torch.nn modules and any subclass of ``leaf_types``; records the output
    node of each module call in ``module_out`` (path -> node; for a module called several times, such as
    torchvision's shared ``relu``, the last call wins) and its class name in ``module_type``."""

    def __init__(self, leaf_types: tuple = LEAF_TYPES) -> None:
        super().__init__()
        self.leaf_types = tuple(leaf_types)
        self.module_out: dict[str, fx.Node] = {}
        self.module_type: dict[str, str] = {}

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return super().is_leaf_module(m, qualname) or isinstance(m, self.leaf_types)

    def call_module(self, m, forward, args, kwargs):
        out = super().call_module(m, forward, args, kwargs)
        node = _first_node(out)
        try:
            path = self.path_of_module(m)
        except NameError:
            return out
        if node is not None and path:
            self.module_out[path] = node
            self.module_type[path] = type(m).__name__
        return out


def _first_node(out) -> fx.Node | None:
    if isinstance(out, fx.Proxy):
        return out.node
    if isinstance(out, (tuple, list)):
        return next((o.node for o in out if isinstance(o, fx.Proxy)), None)
    return None


@dataclass
class Traced:
    """A traced model: ``root`` (the module), ``graph`` and, per module path, the node its (last) call
    produced and its class name. ``gm`` (a GraphModule sharing the root's submodules) is built on first
    use and then owns ``graph``; a caller that rewrites the graph with modules the root does not have yet
    (lrp's routing of additions through ``Sum`` modules) uses ``graph`` alone."""

    root: nn.Module
    graph: fx.Graph
    module_out: dict[str, fx.Node] = field(default_factory=dict)
    module_type: dict[str, str] = field(default_factory=dict)

    @cached_property
    def gm(self) -> fx.GraphModule:
        return fx.GraphModule(self.root, self.graph)

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.root.named_modules())


def trace(module: nn.Module, extra_leaves: tuple = ()) -> Traced:
    """Trace ``module`` with :class:`LeafTracer` (``extra_leaves``: more types kept as single nodes).
    Raises whatever torch.fx raises on untraceable (data-dependent) control flow: callers turn it into
    their own typed error or fallback."""
    tracer = LeafTracer(LEAF_TYPES + tuple(extra_leaves))
    graph = tracer.trace(module)
    return Traced(tracer.root, graph, tracer.module_out, tracer.module_type)
