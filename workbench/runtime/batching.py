"""Run a function over a batch in chunks, halving the chunk on out-of-memory."""

from __future__ import annotations

import functools
from collections.abc import Callable

from workbench.core.errors import ComputeError
from workbench.runtime.device import is_oom


def run_batched(fn: Callable, x, ctx, *, start: float = 0.0, stop: float = 1.0, label: str = "",
                report: bool = True):
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
        i = min(i + size, n)  # the last chunk may be short: never report 16/13
        if report:
            ctx.progress(start + (stop - start) * i / n, f"{label} {i}/{n}".strip())
    ctx.batch_size = size  # remember what fit
    return torch.cat(outs) if outs else x[:0]


@functools.lru_cache(maxsize=1)
def _watched_class():
    import torch

    class Watched(torch.nn.Module):
        """Forwards to ``inner``; each call advances progress and checks cancel."""

        def __init__(self, inner, ctx, expected: int, start: float, stop: float, label: str) -> None:
            super().__init__()
            self.inner, self._ctx, self._expected = inner, ctx, expected
            self._span, self._label, self.calls = (start, stop), label, 0

        def forward(self, *args, **kwargs):
            self.calls += 1
            a, b = self._span
            self._ctx.progress(a + (b - a) * min(1.0, (self.calls - 1) / self._expected), self._label)
            return self.inner(*args, **kwargs)

    return Watched


def __getattr__(name: str):
    if name == "Watched":  # built lazily so importing this module does not import torch
        return _watched_class()
    raise AttributeError(name)
