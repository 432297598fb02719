"""LinearScope rules: the linear interpretation of one traced aten op, frozen at the input x0.

A network traced by ``make_fx`` is a graph of aten ops. :class:`StepBuilder` turns every op that
depends on the input into a *step* ``fn(env, s) -> value`` that is affine in the replayed input
x1 and in the bias scales ``s`` (a float tensor (K,), one entry per bias group), and reproduces
the op's value at x0 exactly when x1 = x0 and s = 1. The rules (Navarrete Michelini et al., ICCV
2019, "A Tour of Convolutional Networks Guided by Linear Interpreters"):

* affine layers (convolution, matmul / addmm, eval-mode batch norm, add / sub of a constant,
  structural ops such as view, pooling by averaging, upsampling, pixel shuffle, padding, cat) are
  replayed as they are; their additive constants are split off into named bias groups;
* piecewise-linear units (ReLU, leaky ReLU, ReLU6 / hardtanh, clamp, threshold, abs, PReLU) keep
  the linear piece active at z0: G = phi'(z0), g = phi(z0) - G z0 (g = 0 for ReLU);
* max-pool / max over a dim gather x1 at the argmax indices of z0 (never recomputed from x1);
* layer / group / instance norm and train-mode batch norm use the mean and std of z0;
* smooth pointwise gates (sigmoid, tanh, GELU, SiLU, ELU, softplus, ...) follow ``gate``:
  ``ratio`` = the secant through phi(0), G = (phi(z0) - phi(0)) / z0, g = phi(0) (this is the
  mask phi(z0)/z0 when phi(0) = 0); ``tangent`` = G = phi'(z0), g = phi(z0) - G z0 (A is then the
  input Jacobian); a product of two input-dependent tensors is split symmetrically
  (a1 b0 + a0 b1) / 2 under ``ratio`` and by the product rule under ``tangent``; a division by an
  input-dependent tensor freezes the denominator at z0 under ``ratio``;
* any other differentiable op falls back to its tangent (forward-mode JVP at z0) and is listed.

Every gate offset g that is not identically zero becomes a bias group too, so c(x0) = y1(x1 = 0)
decomposes exactly into the per-group contributions (the replay is linear in (x1, s) jointly).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch.fx.node import Node, map_arg

from analyzers.linear_scope import units as units
from analyzers.linear_scope.units import Step, functional, is_float, layer_of, packet

STRUCTURAL = frozenset((
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "squeeze", "unsqueeze",
    "clone", "contiguous", "alias", "detach", "slice", "select", "narrow", "flip", "roll", "repeat",
    "pixel_shuffle", "pixel_unshuffle", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d", "mean", "sum", "neg",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "upsample_linear1d", "upsample_bilinear2d", "upsample_bicubic2d",
    "upsample_trilinear3d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa", "_to_copy",
    "split", "split_with_sizes", "chunk", "unbind", "unfold", "im2col", "col2im", "diagonal", "as_strided",
    "index_select", "gather", "index", "movedim", "cumsum", "lift_fresh_copy"))
JOINT_AFFINE = frozenset(("add", "sub", "rsub", "cat", "stack", "where", "constant_pad_nd"))
MATMUL = {  # packet -> (additive slot or None, the two multiplicative slots)
    "convolution": (2, (0, 1)), "_convolution": (2, (0, 1)), "linear": (2, (0, 1)), "addmm": (0, (1, 2)),
    "baddbmm": (0, (1, 2)), "addbmm": (0, (1, 2)), "addmv": (0, (1, 2)), "mm": (None, (0, 1)),
    "bmm": (None, (0, 1)), "matmul": (None, (0, 1)), "mv": (None, (0, 1))}
BATCH_NORMS = frozenset(("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                         "cudnn_batch_norm", "miopen_batch_norm"))
INDEX_POOLS = frozenset(("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
                         "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"))


class StepBuilder:
    """Turns dependent fx nodes into replay steps; collects bias groups and the frozen units.

    ``val0``: node -> value at x0; ``dep``: nodes whose value depends (in floating point) on the
    input; ``origins``: constant node -> parameter / buffer names it is computed from.
    """

    def __init__(self, val0: dict, dep: set, origins: dict, gate: str, freeze: bool) -> None:
        self.val0, self.dep, self.origins, self.gate, self.freeze = val0, dep, origins, gate, freeze
        self.bias_names: list[str] = []
        self.units: list[dict] = []
        self.fallbacks: list[str] = []
        self.last_layer = "input"

    # -- helpers ----------------------------------------------------------------------------------
    def bias_index(self, name: str) -> int:
        if name not in self.bias_names:
            self.bias_names.append(name)
        return self.bias_names.index(name)

    def const_layer(self, node: Node, *slots) -> str:
        names: frozenset[str] = frozenset()
        for i in slots:
            arg = node.args[i] if i < len(node.args) else None
            if isinstance(arg, Node):
                names |= self.origins.get(arg, frozenset())
        return layer_of(names)

    def bind(self, node: Node, sub: Callable[[Node], object]) -> tuple[tuple, dict]:
        return map_arg(node.args, sub), map_arg(node.kwargs, sub)

    def env_args(self, node: Node, env: dict) -> tuple[tuple, dict]:
        return self.bind(node, lambda n: env[n] if n in self.dep else self.val0[n])

    def with_bias(self, lin: Callable[[dict], torch.Tensor], name: str, b: torch.Tensor | None) -> Step:
        """Step ``lin(env) + s[k] * b``; no group when b is absent or identically zero."""
        if b is None or not bool(torch.any(b != 0)):
            return lambda env, s: lin(env)
        k = self.bias_index(name)
        b = b.detach()
        return lambda env, s: lin(env) + s[k] * b

    def real(self, node: Node) -> Step:
        """The op itself on the replayed inputs (the unfrozen control, and exact linear ops)."""
        op = functional(node.target)

        def step(env: dict, s: torch.Tensor):
            args, kwargs = self.env_args(node, env)
            return op(*args, **kwargs)

        return step

    def dep_slots(self, node: Node) -> list[int]:
        return [i for i, a in enumerate(node.args) if isinstance(a, Node) and a in self.dep]

    def only_first_dep(self, node: Node) -> bool:
        flat: list[Node] = []
        map_arg((node.args[1:], node.kwargs), lambda n: flat.append(n))
        return not any(n in self.dep for n in flat)

    # -- dispatch ---------------------------------------------------------------------------------
    def step(self, node: Node) -> Step:
        name = packet(node.target)
        if node.target is operator.getitem:
            src, i = node.args
            return lambda env, s: env[src][i]
        if name in STRUCTURAL and self.only_first_dep(node):
            return self.real(node)
        if name in JOINT_AFFINE:
            return self.joint_affine(node)
        if name in MATMUL:
            return self.matmul(node, *MATMUL[name])
        if name in BATCH_NORMS:
            return self.batch_norm(node, name)
        if name in ("mul", "div"):
            return self.product(node, name)
        if not self.freeze:
            return self.real(node)
        if name in INDEX_POOLS:
            return units.index_pool(self, node)
        if name in ("max", "min") and node.target._overloadname == "dim":
            return units.max_dim(self, node)
        if name == "native_layer_norm":
            return units.layer_norm(self, node)
        if name == "native_group_norm":
            return units.group_norm(self, node)
        pointwise = name in units.PIECEWISE or name in units.SMOOTH or torch.Tag.pointwise in getattr(
            node.target, "tags", ())
        if pointwise and self.only_first_dep(node) and units.is_float(self.val0[node]):
            return units.pointwise_gate(self, node, name)
        return self.tangent(node, name)

    def tangent(self, node: Node, name: str) -> Step:
        return self.real(node) if not self.freeze else units.tangent(self, node, name)

    # -- affine ops -------------------------------------------------------------------------------
    def joint_affine(self, node: Node) -> Step:
        """add / sub / rsub / cat / stack / where / constant pad: affine jointly in every tensor input;
        constant tensors (and the scalar of add.Scalar, the pad value) form the bias."""
        op, over = functional(node.target), node.target._overloadname
        scalar_slot = {"Scalar": 1}.get(over) if packet(node.target) in ("add", "sub", "rsub") else None
        if packet(node.target) == "constant_pad_nd":
            scalar_slot = 2

        def lin_args(env: dict) -> tuple:
            args = list(map_arg(node.args, lambda n: env[n] if n in self.dep else (
                torch.zeros_like(self.val0[n]) if is_float(self.val0[n]) else self.val0[n])))
            if scalar_slot is not None and scalar_slot < len(args):
                args[scalar_slot] = 0
            return tuple(args)

        zero_dep = map_arg(node.args, lambda n: torch.zeros_like(self.val0[n]) if n in self.dep else self.val0[n])
        bias = op(*zero_dep, **node.kwargs)
        return self.with_bias(lambda env: op(*lin_args(env), **node.kwargs),
                              self.const_layer(node, *range(len(node.args))) or f"constant in {packet(node.target)}",
                              bias)

    def matmul(self, node: Node, add_slot: int | None, mult: tuple[int, int]) -> Step:
        """convolution / linear / (add)mm: linear in the one input-dependent factor, the other factor is a
        coefficient; the additive slot (conv / linear bias, addmm's self) becomes a bias group."""
        deps = [i for i in mult if isinstance(node.args[i], Node) and node.args[i] in self.dep]
        if len(deps) != 1 or (add_slot is not None and add_slot in self.dep_slots(node)):
            return self.tangent(node, packet(node.target))
        op, d = functional(node.target), deps[0]
        args0 = list(map_arg(node.args, lambda n: self.val0[n]))
        layer = self.const_layer(node, *(i for i in mult if i != d), *([] if add_slot is None else [add_slot]))
        self.last_layer = layer or self.last_layer
        b0 = args0[add_slot] if add_slot is not None and add_slot < len(args0) else None
        if add_slot is not None and b0 is not None:
            args0[add_slot] = None if packet(node.target) in ("convolution", "_convolution", "linear") \
                else torch.zeros_like(b0)

        def lin(env: dict) -> torch.Tensor:
            a = list(args0)
            a[d] = env[node.args[d]]
            return op(*a, **node.kwargs)

        if b0 is None:
            return lambda env, s: lin(env)
        if packet(node.target) in ("convolution", "_convolution"):
            bias = b0.reshape(1, -1, *([1] * (self.val0[node].dim() - 2)))
        else:
            zero = list(map_arg(node.args, lambda n: self.val0[n]))
            zero[d] = torch.zeros_like(zero[d])
            bias = op(*zero, **node.kwargs)
        return self.with_bias(lin, layer or f"bias of {packet(node.target)}", bias)

    def batch_norm(self, node: Node, name: str) -> Step:
        """Batch norm as y = x * scale + shift per channel: running statistics in eval mode, the
        statistics of z0 in train mode (instance norm arrives here as a train-mode batch norm)."""
        a = list(map_arg(node.args, lambda n: self.val0[n]))
        z0, w, b = a[0], a[1], a[2]
        if name == "_native_batch_norm_legit_no_training":
            rm, rv, training, eps = a[3], a[4], False, a[6]
        elif name == "_native_batch_norm_legit" and len(a) == 6:  # the no_stats overload
            rm, rv, training, eps = None, None, True, a[5]
        else:
            rm, rv, training, eps = a[3], a[4], bool(a[5]), a[7]
        dims = [0, *range(2, z0.dim())]
        if training:
            if not self.freeze:
                return self.real(node)
            mean, var = z0.mean(dims), z0.var(dims, unbiased=False)
        else:
            mean, var = rm, rv
        scale = torch.rsqrt(var + eps) * (w if w is not None else 1.0)
        shift = (b if b is not None else 0.0) - mean * scale
        shape = (1, -1, *([1] * (z0.dim() - 2)))
        scale, shift = scale.reshape(shape), shift.reshape(shape)
        layer = self.const_layer(node, 1, 2, 3, 4) or f"{name} #{len(self.bias_names)}"
        self.last_layer = layer
        if training:
            self.units.append({"op": name, "layer": layer, "rule": "statistics of z0"})
        rest = tuple(self.val0[node][1:])
        src = node.args[0]
        core = self.with_bias(lambda env: env[src] * scale, layer, shift)
        return lambda env, s: (core(env, s), *rest)

    def product(self, node: Node, name: str) -> Step:
        """mul / div: linear when one factor (the divisor) is constant; otherwise a frozen bilinear gate."""
        slots = self.dep_slots(node)
        if slots == [0] or (name == "mul" and slots == [1]):
            return self.real(node)
        if not self.freeze:
            return self.real(node)
        a, b = node.args[0], node.args[1]
        a0, b0 = self.val0[a], self.val0[b]
        if name == "div" and self.gate == "ratio":  # frozen denominator
            self.units.append({"op": "div", "layer": self.last_layer, "rule": "denominator frozen at z0"})
            if a in self.dep:
                return lambda env, s: env[a] / b0
            return self.with_bias(lambda env: torch.zeros_like(self.val0[node]), f"div after {self.last_layer}",
                                  self.val0[node])
        if name == "div":
            return self.tangent(node, name)
        self.units.append({"op": "mul", "layer": self.last_layer, "rule": f"bilinear ({self.gate})"})
        if self.gate == "ratio":
            return lambda env, s: 0.5 * (env[a] * b0 + a0 * env[b])
        return self.with_bias(lambda env: env[a] * b0 + a0 * env[b], f"product after {self.last_layer}",
                              -(a0 * b0))
