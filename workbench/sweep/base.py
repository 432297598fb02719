"""The executor interface (see workbench/sweep/executors.py for the events it yields) and machine sizing,
apart from the backends so that each backend module imports only this one."""

from __future__ import annotations

import os

from workbench.core.errors import WorkbenchError


def cores() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_workers(threads: int) -> int:
    """Workers so that workers x threads <= cores (at least one)."""
    return max(1, cores() // max(1, threads))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, WorkbenchError):
        return exc.one_line()
    return f"internal_error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class Executor:
    """Runs cells; subclasses implement :meth:`map`. ``workers``: cells at once; ``threads``: torch
    threads per cell."""

    name = "base"

    def __init__(self, workers: int, threads: int) -> None:
        self.workers, self.threads = max(1, int(workers)), max(1, int(threads))

    def map(self, payloads: list[dict], cancel, progress=None):  # pragma: no cover - interface
        """Events for ``payloads`` (see the module docstring); ``progress(key, fraction, message)``, when
        given, is called directly by executors whose cells run in this process."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"executor": self.name, "workers": self.workers, "threads_per_cell": self.threads}
