"""RunContext: what a run may use (device, dtype, seed, batch size, memory budget)
and how it reports (progress, cancel)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.core.errors import Cancelled


class CancelToken:
    """Set from any thread; checked by the run between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


#: default memory budget of one run's data, in MB (see workbench/runtime/budget.py): with the ~1 GB a CLI
#: process holds for Python, torch and a small zoo model, a run on a user file peaks near 2 GB
MEMORY_BUDGET_MB = 1024
#: environment variable overriding the default (e.g. for the app: every run of every session gets it)
MEMORY_BUDGET_ENV = "WORKBENCH_MEMORY_BUDGET_MB"


def default_memory_budget_mb() -> int:
    """``WORKBENCH_MEMORY_BUDGET_MB`` when it holds a whole number >= 64, else :data:`MEMORY_BUDGET_MB`."""
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) >= 64 else MEMORY_BUDGET_MB


@dataclass
class RunContext:
    """Passed to every ``Analyzer.run``.

    ``progress(fraction, message)`` with fraction in [0, 1]; ``check_cancel()`` raises
    :class:`Cancelled` once the token is set. ``batch_size`` is the starting size for
    :func:`workbench.runtime.batching.run_batched`, which halves it on out-of-memory. ``memory_budget_mb``:
    what the run's data may take (decoded samples, inputs, per-sample arrays kept), checked by the runner
    before the work (:mod:`workbench.runtime.budget`).
    """

    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0
    batch_size: int = 32
    memory_budget_mb: int = field(default_factory=default_memory_budget_mb)
    cancel: CancelToken = field(default_factory=CancelToken)
    on_progress: Callable[[float, str], None] | None = None
    fraction: float = 0.0
    message: str = ""
    #: latest partial state published by the run (key -> snapshot), read by live pages
    live: dict = field(default_factory=dict)
    _live_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def progress(self, fraction: float, message: str = "") -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        self.message = message
        if self.on_progress is not None:
            self.on_progress(self.fraction, message)
        self.check_cancel()

    def publish(self, key: str, value: object) -> None:
        """Replace the live snapshot under ``key`` (any JSON-able/numpy data; publish a fresh object,
        do not mutate one already published: readers on other threads may hold it)."""
        with self._live_lock:
            self.live = {**self.live, key: value}

    def check_cancel(self) -> None:
        if self.cancel.cancelled:
            raise Cancelled("the run was cancelled", "start it again when ready")

    def sub(self, start: float, stop: float) -> Callable[[float, str], None]:
        """A progress function mapping [0, 1] onto [start, stop] of this run."""
        return lambda f, msg="": self.progress(start + (stop - start) * f, msg)

    def batched(self, fn: Callable, x, *, start: float = 0.0, stop: float = 1.0, label: str = "",
                report: bool = True):
        """``fn(chunk)`` over ``x`` (N, ...) in chunks of ``batch_size``, halving it on out-of-memory,
        with progress on [start, stop] and cancel between chunks. Analyzers call this (they never
        import the runtime)."""
        from workbench.runtime.batching import run_batched

        return run_batched(fn, x, self, start=start, stop=stop, label=label, report=report)

    def watch(self, module, expected_calls: int, *, start: float, stop: float, label: str = ""):
        """A transparent wrapper around ``module`` that reports progress and honours cancel on
        every forward call: for library calls (captum, zennit) that loop internally."""
        from workbench.runtime.batching import Watched

        return Watched(module, self, max(1, int(expected_calls)), start, stop, label)
