"""A process-wide reader/writer gate for analyzer runs.

torch.fx's symbolic tracer (and make_fx) patch process-global state, such as
``torch.nn.Module.__call__``, while they trace, so a trace must not overlap any other forward pass
in the process. Analyzers that trace declare ``exclusive = True`` and run alone; all others share
the gate and run concurrently.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class RunGate:
    """Many shared holders or one exclusive holder; waiting exclusive holders go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


GATE = RunGate()
