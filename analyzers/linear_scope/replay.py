"""The LinearScope replay: a network frozen at x0 and replayed as y1 = A(x0) x1 + c(x0).

:func:`trace` records the network's aten ops for one input x0 with ``torch.fx``'s ``make_fx``
(functional activations such as ``F.relu`` or ``x.relu()`` inside ``forward`` are ops like any
other, so nothing escapes; no hook is registered and the module is only read). Every op is then
evaluated once at x0 and turned into a replay step by :class:`~analyzers.linear_scope.ops.StepBuilder`.
The resulting :class:`Replay` is a pure function of (x1, s) that ``torch.func`` can ``vjp`` /
``jvp`` / ``vmap``; it never changes the real forward pass.

:mod:`analyzers.linear_scope.products` computes rows, columns, bias terms and singular triplets.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import torch
from torch.fx.node import Node, map_arg

from analyzers.linear_scope.footprint import footprint
from analyzers.linear_scope.ops import BATCH_NORMS, StepBuilder
from analyzers.linear_scope.units import functional, is_float, packet
from workbench.core.errors import UnsupportedModelError


@dataclass
class Replay:
    """y1 = A(x0) x1 + sum_k s_k c_k(x0), a pure function of x1 (1, *in_shape) and s (K,).

    ``x0`` (1, *in_shape) and ``y0`` (1, *out_shape): the input and the real network's output;
    ``bias_names``: the K bias groups in network order (a layer's bias, a folded batch-norm shift,
    a gate offset); ``units``: every frozen non-linear unit with its rule; ``fallbacks``: ops
    replayed by their tangent because no specific rule exists.
    """

    x0: torch.Tensor
    y0: torch.Tensor
    steps: list
    input_node: Node
    output_node: Node
    bias_names: list[str]
    units: list[dict] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    gate: str = "ratio"
    frozen: bool = True
    #: per spatial axis (j, lo, hi): output unit i reads only input pixels i*j+lo .. i*j+hi; None = not local
    #: (see :mod:`analyzers.linear_scope.footprint`; rows with disjoint fields share one backward pass)
    footprint: list | None = None

    @property
    def n_bias(self) -> int:
        return len(self.bias_names)

    @property
    def in_shape(self) -> tuple:
        return tuple(self.x0.shape[1:])

    @property
    def out_shape(self) -> tuple:
        return tuple(self.y0.shape[1:])

    def __call__(self, x1: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """x1 (1, *in_shape) -> y1 (1, *out_shape); s (K,) scales the bias groups (None = all ones)."""
        if s is None:
            s = torch.ones(self.n_bias, dtype=self.x0.dtype, device=self.x0.device)
        env = {self.input_node: x1}
        for node, fn in self.steps:
            env[node] = fn(env, s)
        return env[self.output_node]

    def linear(self, x1: torch.Tensor) -> torch.Tensor:
        """A(x0) x1 alone (every bias group off)."""
        return self(x1, torch.zeros(self.n_bias, dtype=self.x0.dtype, device=self.x0.device))

    @property
    def piecewise_linear(self) -> bool:
        """True when every frozen unit is a linear piece or an argmax (A is then the input Jacobian)."""
        return not self.fallbacks and all(u["rule"] in ("linear piece at z0", "argmax indices of z0")
                                          or u["op"].startswith("_native_batch_norm_legit_no") for u in self.units)


def _evaluate(node: Node, val0: dict):
    """The op at x0. Batch-norm running statistics are cloned so a train-mode op cannot update them."""
    args, kwargs = map_arg(node.args, lambda n: val0[n]), map_arg(node.kwargs, lambda n: val0[n])
    if packet(node.target) in BATCH_NORMS:
        args = tuple(a.clone() if isinstance(a, torch.Tensor) and i in (3, 4) else a for i, a in enumerate(args))
    return functional(node.target)(*args, **kwargs)


def _has_float(v) -> bool:
    return is_float(v) or (isinstance(v, (tuple, list)) and any(is_float(t) for t in v))


def _output(node: Node, val0: dict) -> Node:
    found: list[Node] = []
    map_arg(node.args, lambda n: found.append(n) if is_float(val0.get(n)) else None)
    if not found:
        raise UnsupportedModelError("the model returns no floating-point tensor", "LinearScope needs a tensor output")
    return found[0]


def _record(module: torch.nn.Module, x0: torch.Tensor) -> torch.fx.GraphModule:
    from torch.fx.experimental.proxy_tensor import make_fx

    with warnings.catch_warnings():  # torch's first forward-AD use scripts decompositions with a deprecated API
        warnings.simplefilter("ignore", FutureWarning)
        getattr(torch.autograd.forward_ad, "_maybe_load_decompositions", lambda: None)()

    try:
        with torch.no_grad():
            return make_fx(lambda x: module(x))(x0)
    except Exception as e:  # noqa: BLE001 - tracing failures become one typed line
        raise UnsupportedModelError(f"could not trace the model's forward pass ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:120] if str(e) else ''})",
                                    "LinearScope needs a forward pass made of torch ops") from None


def trace(module: torch.nn.Module, x0: torch.Tensor, *, gate: str = "ratio", freeze: bool = True) -> Replay:
    """Freeze ``module`` (eval mode) at ``x0`` (1, *in_shape), same dtype and device as the module.

    ``gate``: "ratio" | "tangent" for smooth gates (see :mod:`analyzers.linear_scope.ops`).
    ``freeze=False`` builds the broken control: units recompute their decisions from x1, so the
    replay reproduces f(x0) but is no longer affine in x1.
    """
    gm = _record(module, x0)
    names = {id(t): n for n, t in itertools.chain(module.named_parameters(), module.named_buffers())}
    val0: dict = {}
    dep: set = set()
    origins: dict = {}
    out_node = None
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                val0[node] = x0.detach()
                dep.add(node)
            elif node.op == "get_attr":
                v = getattr(gm, node.target)
                val0[node] = v.detach() if isinstance(v, torch.Tensor) else v
                origins[node] = frozenset([names[id(v)]]) if id(v) in names else frozenset()
            elif node.op == "call_function":
                val0[node] = _evaluate(node, val0)
                inputs = node.all_input_nodes
                if any(n in dep for n in inputs) and _has_float(val0[node]):
                    dep.add(node)
                else:
                    origins[node] = frozenset().union(*(origins.get(n, frozenset()) for n in inputs))
            elif node.op == "output":
                out_node = _output(node, val0)
            else:
                raise UnsupportedModelError(f"unexpected graph node {node.op}", "report the model")
    builder = StepBuilder(val0, dep, origins, gate, freeze)
    steps = [(n, builder.step(n)) for n in gm.graph.nodes if n.op == "call_function" and n in dep]
    if out_node not in dep:
        raise UnsupportedModelError("the model's output does not depend on its input", "check the model")
    first = next(iter(gm.graph.nodes))
    # an unfrozen replay recomputes norm statistics from x1: only the frozen one keeps positions local
    fp = footprint(list(gm.graph.nodes), val0, dep, first, out_node) if freeze else None
    return Replay(x0=x0.detach(), y0=val0[out_node].detach(), steps=steps,
                  input_node=first, output_node=out_node,
                  bias_names=builder.bias_names, units=builder.units,
                  fallbacks=sorted(set(builder.fallbacks)), gate=gate, frozen=freeze, footprint=fp)
