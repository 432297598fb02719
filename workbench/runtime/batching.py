"""Run a function over a batch in chunks, halving the chunk on out-of-memory."""

from __future__ import annotations

from collections.abc import Callable

from workbench.core.errors import ComputeError
from workbench.runtime.device import is_oom


def run_batched(fn: Callable, x, ctx, *, start: float = 0.0, stop: float = 1.0, label: str = ""):
    """``fn(chunk) -> tensor`` over ``x`` (N, ...) in chunks of ``ctx.batch_size``.

    On out-of-memory the chunk size halves (down to 1) and the failed chunk is retried;
    progress and cancel are handled between chunks. Returns the concatenated outputs.
    """
    import torch

    n = x.shape[0]
    size = max(1, int(ctx.batch_size))
    outs, i = [], 0
    while i < n:
        ctx.check_cancel()
        try:
            outs.append(fn(x[i:i + size]))
        except Exception as e:  # noqa: BLE001 - only OOM is retried, the rest re-raised
            if not is_oom(e):
                raise
            if size == 1:
                raise ComputeError("out of memory even with a batch of 1",
                                   "use a smaller input or the CPU") from None
            size = max(1, size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        i += size
        ctx.progress(start + (stop - start) * i / n, f"{label} {i}/{n}".strip())
    ctx.batch_size = size  # remember what fit
    return torch.cat(outs) if outs else x[:0]
