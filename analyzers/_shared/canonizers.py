"""Canonizers beyond zennit's own, used by :func:`analyzers._shared.lrp.plan_canonization`.

* exact BatchNorm merges (zennit's, with the BN's eps set to 0 afterwards so it is an exact identity);
* :class:`RightMergeBatchNorm`: a BatchNorm after a non-linearity folded into the next linear layer;
* :class:`GraphSumCanonizer`: residual additions of any traceable model routed through zennit ``Sum``.

Each instance changes parameters or ``forward`` in place and restores them in ``remove``.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn
from zennit.canonizers import Canonizer, NamedMergeBatchNorm, SequentialMergeBatchNorm
from zennit.layer import Sum

from analyzers._shared.batchnorm import bn_affine


class _ExactMerge:
    """Mixin for zennit's BN merges: after merging, set the BN's eps to 0 so it is an exact identity
    (zennit keeps eps, which scales every merged BN's output by 1/sqrt(1 + eps)); restored on remove."""

    def register(self, linears, batch_norm):
        self._eps = batch_norm.eps
        super().register(linears, batch_norm)
        batch_norm.eps = 0.0

    def remove(self):
        super().remove()
        # zennit 1.0 merges and restores with object.__setattr__, which leaves instance attributes that
        # shadow the registered parameters and buffers: a later resize (pruning) or .to() would change
        # the registered tensor while forward kept reading the stale one. Put each back where nn.Module
        # keeps it (a bias that was None stays None). No-op on zennit 0.5.
        for module in (*self.linears, self.batch_norm):
            for store in (module._parameters, module._buffers):
                for key in [k for k in store if k in vars(module)]:
                    store[key] = vars(module).pop(key)
        self.batch_norm.eps = self._eps


class ExactNamedMergeBatchNorm(_ExactMerge, NamedMergeBatchNorm):
    """Merge the named (linear, BatchNorm) pairs found in the traced graph."""


class ExactSequentialMergeBatchNorm(_ExactMerge, SequentialMergeBatchNorm):
    """Merge BatchNorms that follow a linear layer in module-registration order (fallback)."""


class RightMergeBatchNorm(Canonizer):
    """Fold a BatchNorm that sits after a non-linearity into the next Linear layer (exact: the steps in
    between, average pooling / flatten / dropout, are channel-wise linear and keep constants): with
    ``a = gamma / sqrt(var + eps)`` and ``c = beta - mean * a`` per channel, ``W' = W diag(a)`` and
    ``b' = b + W c`` (each channel repeated over the ``in_features / C`` inputs it feeds after a
    flatten); the BatchNorm becomes the identity. Reverted by :meth:`remove`."""

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self.pairs, self.saved = pairs or [], None

    def apply(self, root_module):
        modules = dict(root_module.named_modules())
        out = []
        for bn_name, lin_name in self.pairs:
            instance = RightMergeBatchNorm()
            instance.register(modules[bn_name], modules[lin_name])
            out.append(instance)
        return out

    def register(self, bn, lin) -> None:
        block = lin.in_features // bn.num_features
        keys = ("weight", "bias", "running_mean", "running_var")
        self.saved = (bn, lin, {k: getattr(bn, k).data for k in keys}, bn.eps, lin.weight.data,
                      None if lin.bias is None else lin.bias.data)
        with torch.no_grad():
            w = lin.weight.data
            a, c = (t.to(w) for t in bn_affine(bn))  # per channel: bn(x) = a * x + c
            old = lin.bias.data if lin.bias is not None else torch.zeros_like(w[:, 0])
            bias = old + w @ c.repeat_interleave(block)
            if lin.bias is None:
                lin.bias = nn.Parameter(bias)
            else:
                lin.bias.data = bias
            lin.weight.data = w * a.repeat_interleave(block)[None]
            bn.weight.data, bn.bias.data = torch.ones_like(a), torch.zeros_like(a)
            bn.running_mean.data, bn.running_var.data, bn.eps = torch.zeros_like(a), torch.ones_like(a), 0.0

    def remove(self) -> None:
        if self.saved is None:
            return
        bn, lin, params, eps, weight, bias = self.saved
        for k, v in params.items():
            getattr(bn, k).data = v
        bn.eps, lin.weight.data = eps, weight
        if bias is None:
            lin.bias = None
        else:
            lin.bias.data = bias
        self.saved = None

    def copy(self):
        return RightMergeBatchNorm(self.pairs)


class GraphSumCanonizer(Canonizer):
    """Replace the model's ``forward`` by its traced graph in which every ``a + b`` of two activations
    runs through a zennit ``Sum`` module (so the Norm rule splits relevance between the branches
    instead of the gradient copying it to both). Reverted by :meth:`remove`."""

    def __init__(self, graph: fx.Graph | None = None, n_sums: int = 0) -> None:
        self.graph, self.n_sums, self.module = graph, n_sums, None

    def apply(self, root_module):
        instance = GraphSumCanonizer(self.graph, self.n_sums)
        instance.register(root_module)
        return [instance]

    def register(self, module) -> None:
        self.module = module
        module.canonizer_sums = nn.ModuleList([Sum() for _ in range(self.n_sums)])
        module.forward = fx.GraphModule(module, self.graph).forward

    def remove(self) -> None:
        if self.module is not None:
            self.module.__dict__.pop("forward", None)
            del self.module.canonizer_sums
            self.module = None

    def copy(self):
        return GraphSumCanonizer(self.graph, self.n_sums)


def bake_parametrizations(net: nn.Module) -> list[str]:
    """Replace every parametrized conv / linear layer (braindecode's max-norm convolutions) of a PRIVATE copy by a
    plain torch layer holding the current weight; returns the names replaced. The forward is unchanged, and the
    BatchNorm merge can then write the weight (it cannot write through a parametrization, which left EEGNet's
    bnorm_1 unmerged). Not ``parametrize.remove_parametrizations``: a deep copy shares the parametrized class with
    the original, and removing deletes the property from that class, breaking the shared model. Used by the lrp
    analyzer and eeg_saliency's generic LRP."""
    from torch.nn.utils import parametrize

    baked = []
    for prefix, parent in list(net.named_modules()):
        for name, m in list(parent.named_children()):
            if not parametrize.is_parametrized(m):
                continue
            base = next((b for b in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear) if isinstance(m, b)), None)
            if base is None:
                continue
            new = base(m.in_features, m.out_features, m.bias is not None) if base is nn.Linear else base(
                m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                m.bias is not None, m.padding_mode)
            new = new.to(device=m.weight.device, dtype=m.weight.dtype)
            with torch.no_grad():
                new.weight.copy_(m.weight)
                if m.bias is not None:
                    new.bias.copy_(m.bias)
            setattr(parent, name, new.train(m.training))
            baked.append(f"{prefix}.{name}" if prefix else name)
    return baked
