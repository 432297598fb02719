"""Hook bookkeeping shared by analyzers and tests: count and guarantee removal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
               "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks")


def count_hooks(module) -> int:
    """Total hooks registered on ``module`` and all its submodules and parameters."""
    n = 0
    for m in module.modules():
        n += sum(len(getattr(m, d, {}) or {}) for d in _HOOK_DICTS)
    for p in module.parameters():
        n += len(getattr(p, "_backward_hooks", None) or {})
    return n


@contextlib.contextmanager
def removable(handles: list) -> Iterator[list]:
    """Collect hook handles in ``handles``; every one is removed on exit, error or not."""
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()
        handles.clear()
