"""The ledger's bookkeeping during one LRP pass: per-sample relevance at every recorded module call, taken by
tensor hooks while the single backward to the input passes, without keeping any tensor.

Why not ``autograd.grad`` with respect to every boundary tensor (the first version, and
:class:`analyzers._shared.lrp.RelevanceTape`, which LRP pruning still uses): holding every layer's input view and
output until the end of the backward kept all of them in memory (resnet18, batch 8: +1034 MB peak against
zennit's own +717 MB; with these hooks +781 MB) and cost ~5-9% of the pass (issue 21); a hook reduces each
gradient to (N,) numbers as it is made, and the tensor is freed as usual. The sums are exact float64 sums of the
gradients' values, as before: the ledger's arrays are bit for bit those of the first version.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from torch import nn

RECENT = 2  # gradients held for reuse of their sums (more holds memory and catches no more on resnet18)


def per_sample(t: torch.Tensor, n: int) -> np.ndarray:
    """(N, ...) tensor -> (N,) float64 sums; anything without a batch axis of N counts as zero. The sum
    accumulates in float64 as it reads the float32 values (``dtype=``): no float64 copy of the tensor (resnet18's
    first conv at batch 8: 51 MB, whose page faults cost 15x the sum itself) and no block loop (2.7x slower)."""
    if t.dim() == 0 or t.shape[0] != n:
        return np.zeros(n)
    return t.detach().reshape(n, -1).sum(1, dtype=torch.float64).cpu().numpy()


class _Call:
    """One recorded call: its index (set when its output is recorded) and the call whose output it read."""

    __slots__ = ("index", "source")

    def __init__(self, source: int | None) -> None:
        self.index, self.source = None, source


class Books:
    """Record each call of the named modules (``with Books(model, names, n) as books:`` around the forward).

    A private view of the call's first input is handed to the module (a pre-hook prepended, so it runs before
    zennit's): the gradient of that view is the relevance this call passed down, its own share only; the
    gradient of its output is the relevance that reached it. Tensor hooks sum both per sample into ``r_in`` /
    ``r_out`` (lists of (N,) float64, zeros where no gradient arrives: an input without a graph, or a tensor not
    on a path to the input). ``calls``: module names in forward order (a module called twice appears twice);
    ``sources``: for each call, the index of the recorded call whose output was its input (None otherwise).
    Module hooks are removed on exit; tensor hooks by :meth:`close` (or with the graph)."""

    def __init__(self, model: nn.Module, names: list[str], n: int) -> None:
        self.model, self.names, self.n = model, list(names), n
        self.calls: list[str] = []
        self.sources: list[int | None] = []
        self.r_in: list[np.ndarray] = []
        self.r_out: list[np.ndarray] = []
        self._live: dict[int, tuple[weakref.ref, int]] = {}  # id(output) -> (weak ref, call index), for sources
        self._recent: dict[tuple, tuple] = {}  # (address, shape, stride, dtype, device) -> (grad, version, sums)
        self._handles: list = []
        self._tensor_handles: list = []
        self._pending: _Call | None = None

    def __enter__(self) -> Books:
        modules = dict(self.model.named_modules())
        try:
            for name in self.names:
                m = modules[name]
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

    def close(self) -> None:
        """Remove the tensor hooks (after the backward)."""
        for h in self._tensor_handles:
            h.remove()
        self._tensor_handles.clear()
        self._live.clear()
        self._recent.clear()

    def index_of(self, t: torch.Tensor) -> int | None:
        """The call whose recorded output is ``t`` (alive), else None."""
        got = self._live.get(id(t))
        return got[1] if got is not None and got[0]() is t else None

    def _sum_into(self, store: list, call: _Call):
        def keep(grad: torch.Tensor) -> None:
            if call.index is not None:
                store[call.index] = self._sums(grad)
        return keep

    def _sums(self, grad: torch.Tensor) -> np.ndarray:
        """per_sample of ``grad``, reused when the same unchanged memory was summed just before: a call's output
        gradient is usually its only consumer's input gradient, and a Pass rule returns what it got. Recent
        gradients are held (so their memory cannot be reused by another tensor) with their version counter
        (an in-place accumulation into them changes it)."""
        key = (grad.data_ptr(), tuple(grad.shape), grad.stride(), grad.dtype, grad.device)
        hit = self._recent.get(key)
        if hit is not None and hit[1] == grad._version:
            return hit[2]
        sums = per_sample(grad, self.n)
        self._recent[key] = (grad, grad._version, sums)
        while len(self._recent) > RECENT:
            self._recent.pop(next(iter(self._recent)))
        return sums

    def _pre(self, module, args):
        if not args or not isinstance(args[0], torch.Tensor) or not args[0].requires_grad:
            self._pending = None
            return None
        call = _Call(self.index_of(args[0]))
        view = args[0].view_as(args[0])
        self._tensor_handles.append(view.register_hook(self._sum_into(self.r_in, call)))
        self._pending = call
        return (view, *args[1:])

    def _make_post(self, name: str):
        def post(module, args, output):
            call, self._pending = self._pending, None
            if not isinstance(output, torch.Tensor) or output.grad_fn is None:
                return None
            i = len(self.calls)
            call = call or _Call(None)  # an input without a graph: nothing passed down
            call.index = i
            self.calls.append(name)
            self.sources.append(call.source)
            self.r_in.append(np.zeros(self.n))
            self.r_out.append(np.zeros(self.n))
            self._tensor_handles.append(output.register_hook(self._sum_into(self.r_out, call)))
            self._live[id(output)] = (weakref.ref(output), i)
            return None  # a forward hook that returns a value would replace the output

        return post


def gaps(books: Books, out_index: int | None) -> np.ndarray:
    """(L, N) relevance reaching each call's output other than through recorded calls that took that very
    tensor as input (the model output, call ``out_index``, is exempt: its relevance is the initial one).
    Non-zero also for harmless functional steps (``torch.flatten``, ``torch.stack``), so read it only when the
    books do not close: it then points at the layers next to the operation that created or lost relevance."""
    n = books.n
    fed: dict[int, np.ndarray] = {}
    for i, src in enumerate(books.sources):
        if src is not None:
            fed[src] = fed.get(src, 0.0) + books.r_in[i]
    out = np.zeros((len(books.calls), n))
    for i in range(len(books.calls)):
        if i != out_index:
            out[i] = books.r_out[i] - fed.get(i, 0.0)
    return out
