"""Architecture summaries for the zoo browser: layer table from one dry forward pass."""

from __future__ import annotations

import functools

from workbench.core.hooks import removable
from workbench.runtime.runner import shared_model


@functools.lru_cache(maxsize=16)
def architecture_table(model_id: str) -> tuple[dict, ...]:
    """Leaf layers of a zoo model: name, type, output shape (for one zero input), parameters.

    Runs one forward pass on CPU with hooks that are removed afterwards, holding the shared
    model's lock so no analysis sees the hooks.
    """
    with shared_model(model_id, "cpu") as handle:
        return _table(handle)


def _table(handle) -> tuple[dict, ...]:
    import torch

    module, rows, handles = handle.module, [], []
    leaves = [(n, m) for n, m in module.named_modules() if n and not list(m.children())]

    def hook(name, m):
        def fn(_m, _inp, out):
            shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else "-"
            rows.append({"layer": name, "type": type(m).__name__, "output": str(shape),
                         "params": sum(p.numel() for p in m.parameters(recurse=False))})
        return fn

    with removable(handles), torch.no_grad():
        for n, m in leaves:
            handles.append(m.register_forward_hook(hook(n, m)))
        module(torch.zeros((1, *handle.card.input_shape)))
    return tuple(rows)
