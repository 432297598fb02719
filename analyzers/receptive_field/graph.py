"""Theoretical receptive field of every layer of any traceable model, walking the real torch.fx graph.

Walking the graph (not the module registration order) is what makes residual networks right:
torchvision's ``downsample`` branch is registered after ``conv3`` but runs beside it, and the add
takes the union of both boxes (the longest path decides). Shapes come from meta tensors
(:mod:`analyzers.receptive_field.shapes`; a real forward of one zero input only where meta cannot run);
the recurrence itself is O(#nodes), no per-pixel probing.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from analyzers._shared.tracing import Traced
from analyzers._shared.tracing import trace as trace_leaves
from analyzers.receptive_field import box as rb
from analyzers.receptive_field.box import GLOBAL, LOCAL, NONE, Box
from analyzers.receptive_field.calls import function_box, method_box
from analyzers.receptive_field.ops import POOLS, module_box, tensor_shape
from analyzers.receptive_field.shapes import Shapes, propagate_meta, signature
from workbench.core.errors import ConfigError, DataError, UnsupportedModelError


@dataclass
class Row:
    """One layer of the RF table: the node a module (or the input/output) produces."""

    name: str
    node: fx.Node
    box: Box
    op: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class RFAnalysis:
    """The traced graph, every node's box, and the per-layer rows (in execution order)."""

    gm: fx.GraphModule
    boxes: dict
    module_out: dict
    rows: list[Row]
    warnings: list[str]
    input_shape: tuple

    @property
    def n_axes(self) -> int:
        return len(self.input_shape) - 1

    def find(self, layer: str) -> Row:
        """The row for a module path (or alias, or fx node name); ConfigError with suggestions."""
        for row in self.rows:
            if layer == row.name or layer in row.aliases:
                return row
        node = self.module_out.get(layer) or next((n for n in self.gm.graph.nodes if n.name == layer), None)
        if node is not None and node.op == "output":  # "output": the value the model returns
            node = _first_arg_node(node.args[0])
        if node is not None and node in self.boxes:
            return Row(layer, node, self.boxes[node], "node")
        if node is not None:
            raise DataError(f"layer {layer!r} cannot be reached at input {self.input_shape}: "
                            f"{self.warnings[0] if self.warnings else 'shape error'}",
                            "use the model's own input size (input_size=0) or an earlier layer")
        tops = [r.name for r in self.rows if "." not in r.name][-6:]
        raise ConfigError(f"layer {layer!r} is not a module of this model",
                          f"e.g. {', '.join(tops)} (dotted paths like layer4.1 work too)")

    def default_layer(self, preferred: tuple = ()) -> Row:
        """The card's first layer of interest, else the last layer whose output is still spatial."""
        for name in preferred:
            if name in self.module_out:
                return self.find(name)
        spatial = [r for r in self.rows if r.box.dims and _spatial_size(r.node, r.box) > 1]
        return spatial[-1] if spatial else self.rows[-1]


def _spatial_size(node, box: Box) -> int:
    """Number of spatial positions of a node's output (0 when its spatial dims are unknown)."""
    shape = tensor_shape(node)
    if shape is None or not box.dims or len(set(box.dims)) != len(box.dims):
        return 0
    return int(np.prod([shape[t] for t in box.dims]))


def trace(module: nn.Module) -> tuple[fx.GraphModule, Traced]:
    """torch.fx trace with the shared leaf tracer (does not touch the module's parameters, hooks or mode)."""
    try:
        traced = trace_leaves(module)
    except Exception as e:  # noqa: BLE001 - fx raises many types for untraceable code
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise UnsupportedModelError(f"{type(module).__name__} cannot be traced by torch.fx "
                                    f"({type(e).__name__}: {first})",
                                    "models with data-dependent Python control flow are not supported") from None
    return traced.gm, traced


def propagate_shapes(gm: fx.GraphModule, x: torch.Tensor) -> tuple[fx.Node | None, str]:
    """Store every node's output shape in ``node.meta`` from a real forward of ``x``; returns (node it
    failed at or None, reason)."""
    for n in gm.graph.nodes:  # nothing left from an earlier (meta) pass
        n.meta.pop("tensor_meta", None)
        n.meta.pop("rf_value", None)
    prop = Shapes(gm)
    try:
        with torch.no_grad():
            prop.run(x)
    except Exception as e:  # noqa: BLE001 - any op may refuse a shape
        cause = e.__cause__ or e
        return prop.failed or next(iter(gm.graph.nodes)), (str(cause).strip().splitlines() or [""])[0][:160]
    return None, ""


#: analyses kept per (module, its structure, input shape, dtype, device): the app re-runs the same shared
#: model, and tracing + shapes are the whole cost of the theoretical RF. Entries die with their module.
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


def analyze(module: nn.Module, input_shape: tuple) -> RFAnalysis:
    """Trace ``module``, propagate shapes for one input of ``input_shape`` ((C, H, W) or (C, T)), and compute
    every node's box. If a later node cannot run at this size (e.g. a Linear head expecting the training
    size), the layers before it are still analysed and a warning says so. Cached per module and input
    shape (the returned analysis is shared: callers must not change it)."""
    p = next(module.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    device = p.device if p is not None else torch.device("cpu")
    key = (id(module), signature(module), tuple(input_shape), dtype, str(device))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is module:
            _CACHE.move_to_end(key)
            return hit[1]
    an = _analyze(module, tuple(input_shape), dtype, device)
    with _CACHE_LOCK:
        _CACHE[key] = (weakref.ref(module, lambda _r, k=key: _CACHE.pop(k, None)), an)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return an


def _analyze(module: nn.Module, input_shape: tuple, dtype: torch.dtype, device) -> RFAnalysis:
    gm, tracer = trace(module)
    failed, reason = None, ""
    if not propagate_meta(gm, input_shape, dtype):  # data-dependent code or an unusual op: a real forward
        failed, reason = propagate_shapes(gm, torch.zeros(1, *input_shape, device=device, dtype=dtype))
    warnings: list[str] = []

    def warn(msg: str) -> None:
        if msg not in warnings:
            warnings.append(msg)

    if failed is not None:
        warn(f"the model stops running at {failed.name} for input {tuple(input_shape)} ({reason}): "
             "later layers are not analysed")
    boxes = walk(gm, warn, stop=failed)
    rows = _rows(gm, tracer, boxes)
    if len(rows) < 2:
        raise DataError(f"the model does not run on an input of shape {tuple(input_shape)} ({reason})",
                        "use a larger input_size")
    return RFAnalysis(gm, boxes, tracer.module_out, rows, warnings, tuple(input_shape))


def walk(gm: fx.GraphModule, warn, stop: fx.Node | None = None) -> dict:
    """Every node's output box, in topological order (up to, not including, ``stop``)."""
    env: dict = {}
    seen_input = False
    in_rank = next((len(tensor_shape(n)) for n in gm.graph.nodes
                    if n.op == "placeholder" and tensor_shape(n) is not None), 0)
    for node in gm.graph.nodes:
        if node is stop:
            break
        if node.op == "placeholder":
            shape = tensor_shape(node)
            env[node] = rb.identity(len(shape), tuple(range(2, len(shape)))) if (
                shape is not None and not seen_input) else Box(NONE)
            seen_input = seen_input or shape is not None
        elif node.op == "get_attr":
            env[node] = Box(NONE)
        elif node.op == "call_module":
            env[node] = module_box(gm.get_submodule(node.target), node, env, warn)
        elif node.op == "call_function":
            env[node] = function_box(node, env, warn)
        elif node.op == "call_method":
            env[node] = method_box(node, env, warn)
        else:  # output
            env[node] = env.get(_first_arg_node(node.args[0]), Box(NONE))
        env[node] = _restore_dims(env[node], node, in_rank)
    return env


def _restore_dims(box: Box, node, in_rank: int) -> Box:
    """A global map that went through reshapes (window partitions) and came back to the input's
    (N, C, *spatial) rank: assume the usual layout again, so its centre unit can still be probed."""
    shape = tensor_shape(node)
    if box.kind == GLOBAL and not box.dims and shape is not None and len(shape) == in_rank > 2:
        return box.replace(dims=tuple(range(2, in_rank)), ndim=in_rank)
    return box


def _first_arg_node(arg) -> fx.Node | None:
    if isinstance(arg, fx.Node):
        return arg
    if isinstance(arg, (tuple, list)):
        return next((a for a in arg if isinstance(a, fx.Node)), None)
    if isinstance(arg, dict):
        return next((a for a in arg.values() if isinstance(a, fx.Node)), None)
    return None


def _op_label(gm: fx.GraphModule, path: str, node: fx.Node, kind: str) -> str:
    """'Conv2d k3 s2 p1' for window leaves, the class name for blocks."""
    if node.op == "call_module" and node.target == path:
        m = gm.get_submodule(path)
        if isinstance(m, (nn.modules.conv._ConvNd, *POOLS)):
            def one(v):
                v = v if isinstance(v, (tuple, list)) else (v,)
                return "x".join(str(int(a)) if isinstance(a, (int, float)) else str(a) for a in v) \
                    if len(set(v)) > 1 else str(v[0])
            parts = [f"k{one(m.kernel_size)}", f"s{one(m.stride)}", f"p{one(getattr(m, 'padding', 0))}"]
            d = getattr(m, "dilation", 1)
            if one(d) != "1":
                parts.append(f"d{one(d)}")
            return f"{type(m).__name__} {' '.join(parts)}"
    return kind


def _rows(gm: fx.GraphModule, tracer: Traced, boxes: dict) -> list[Row]:
    by_node: dict = defaultdict(list)
    for path, node in tracer.module_out.items():
        by_node[node].append(path)
    rows: list[Row] = []
    for node in gm.graph.nodes:
        if node not in boxes:
            break
        if node.op == "placeholder" and boxes[node].kind == LOCAL and not rows:
            rows.append(Row("input", node, boxes[node], "input"))
        elif node in by_node and boxes[node].kind != NONE:
            names = sorted(by_node[node], key=lambda p: (p.count("."), len(p)))
            label = _op_label(gm, names[-1], node, tracer.module_type[names[0]])
            rows.append(Row(names[0], node, boxes[node], label, names[1:]))
        elif node.op == "output":
            src = _first_arg_node(node.args[0])
            if src is not None and all(r.node is not src for r in rows) and boxes.get(src, Box(NONE)).kind != NONE:
                rows.append(Row("output", src, boxes[src], "output"))
    return rows


def truncated(gm: fx.GraphModule, node: fx.Node) -> fx.GraphModule:
    """A GraphModule that stops at ``node`` and returns its value (shares ``gm``'s submodules)."""
    graph, env = fx.Graph(), {}
    for n in gm.graph.nodes:
        if n.op == "output":
            break
        env[n] = graph.node_copy(n, lambda a: env[a])
        if n is node:
            break
    graph.output(env[node])
    sub = fx.GraphModule(gm, graph)
    sub.graph.eliminate_dead_code()
    sub.recompile()
    return sub


def is_global(box: Box) -> bool:
    return box.kind == GLOBAL
