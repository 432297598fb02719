"""Probes around one analyzer run for :mod:`workbench.core.conformance`: the model state a run must leave
alone, a cancel pressed at the k-th cancel check and an error raised at the n-th forward call.

Nothing here imports torch: tensors are read through their own methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.errors import Cancelled
from workbench.core.hooks import count_hooks


def _few(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


@dataclass
class ModelState:
    """What a run must not change on a shared module: value bytes, modes, requires_grad, hook count."""

    values: dict[str, tuple[str, tuple, bytes]]
    training: dict[str, bool]
    grads: dict[str, bool]
    hooks: int


def _value(t: Any) -> tuple[str, tuple, bytes]:
    """(dtype, shape, bytes) of a tensor; bfloat16 is widened exactly to float32 for numpy."""
    t = t.detach().cpu()
    kind = str(t.dtype)
    if kind == "torch.bfloat16":
        t = t.float()
    return kind, tuple(t.shape), t.contiguous().numpy().tobytes()


def snapshot(module: Any) -> ModelState:
    return ModelState(
        values={n: _value(t) for n, t in module.state_dict(keep_vars=True).items()},
        training={n or "<model>": m.training for n, m in module.named_modules()},
        grads={n: bool(p.requires_grad) for n, p in module.named_parameters()},
        hooks=count_hooks(module))


def state_changes(before: ModelState, after: ModelState, *, values: bool) -> list[str]:
    """Human-readable differences; ``values=False`` compares hooks only (a private, mutable copy)."""
    out = []
    if after.hooks > before.hooks:
        out.append(f"left {after.hooks - before.hooks} hook(s) on the model")
    elif after.hooks < before.hooks:
        out.append(f"removed {before.hooks - after.hooks} hook(s) that were on the model")
    if not values:
        return out
    changed = [n for n in before.values if after.values.get(n) != before.values[n]]
    added = sorted(set(after.values) - set(before.values))
    if changed:
        out.append(f"changed parameter/buffer values: {_few(changed)}")
    if added:
        out.append(f"added parameters/buffers: {_few(added)}")
    modes = [f"{n} ({'train' if v else 'eval'} -> {'train' if after.training.get(n) else 'eval'})"
             for n, v in before.training.items() if after.training.get(n) != v]
    if modes:
        out.append(f"changed the train/eval mode of: {_few(modes)}")
    grads = [n for n, v in before.grads.items() if after.grads.get(n) != v]
    if grads:
        out.append(f"changed requires_grad of: {_few(grads)}")
    return out


class CancelAt:
    """Counts ``ctx.check_cancel()`` calls (``ctx.progress`` makes one); at call ``at`` it presses cancel
    on the context's token, as a user would, so this and every later check raises :class:`Cancelled`."""

    def __init__(self, ctx: Any, at: int | None) -> None:
        self.ctx, self.at, self.calls = ctx, at, 0
        self._original = ctx.check_cancel
        ctx.check_cancel = self  # an instance attribute: ctx.progress calls self.check_cancel()

    def __call__(self) -> None:
        self.calls += 1
        if self.at is not None and self.calls >= self.at:
            token = getattr(self.ctx, "cancel", None)
            if token is None or not callable(getattr(token, "cancel", None)):
                raise Cancelled("cancelled by the conformance suite", "this is a test")
            token.cancel()
        self._original()

    def restore(self) -> None:
        vars(self.ctx).pop("check_cancel", None)


class InjectedFault(RuntimeError):
    """Raised inside a model's forward by :class:`ForwardFault`."""


class ForwardFault:
    """A forward pre-hook on the first parameterized leaf layer that counts calls and raises
    :class:`InjectedFault` from call ``at`` on. The hook is a plain function, so deep copies of the
    model made by the analyzer share it and its count."""

    def __init__(self, module: Any, at: int | None) -> None:
        self.calls, self.at = 0, at
        layer = next((m for m in module.modules() if not any(True for _ in m.children())
                      and any(True for _ in m.parameters(recurse=False))), None)

        def hook(_module: Any, _args: Any, fault: ForwardFault = self) -> None:
            fault.calls += 1
            if fault.at is not None and fault.calls >= fault.at:
                raise InjectedFault(f"fault injected by the conformance suite at forward call {fault.calls}")

        self._handle = layer.register_forward_pre_hook(hook) if layer is not None else None

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
