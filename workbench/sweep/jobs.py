"""A sweep as a background job for the app: the interface of :class:`workbench.runtime.jobs.Job` (state,
fraction, message, cancel, ``ctx.live``, result, error), so the pages' job panel shows its progress and
its live aggregate (``ctx.live["sweep"]``, a SweepResult of the cells finished so far)."""

from __future__ import annotations

import logging
import threading
import time
import traceback

from workbench.core.errors import Cancelled, WorkbenchError
from workbench.runtime.context import RunContext
from workbench.sweep.engine import RunOptions, run_sweep
from workbench.sweep.grid import SweepSpec

log = logging.getLogger("workbench.sweep.jobs")


class SweepJob:
    """``state``: running | done | failed | cancelled. Cells go to ``options.cache`` (resumable)."""

    def __init__(self, spec: SweepSpec, options: RunOptions) -> None:
        self.spec, self.options = spec, options
        self.ctx = RunContext()
        self.state, self.result, self.error = "running", None, ""
        self.started, self.finished = time.time(), None
        self._thread = threading.Thread(target=self._work, daemon=True, name=f"sweep-{spec.analyzer}")

    @property
    def fraction(self) -> float:
        return self.ctx.fraction

    @property
    def message(self) -> str:
        return self.ctx.message

    @property
    def done(self) -> bool:
        return self.state != "running"

    def start(self) -> SweepJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.ctx.cancel.cancel()

    def wait(self, timeout: float | None = None) -> SweepJob:
        self._thread.join(timeout)
        return self

    def _work(self) -> None:
        try:
            self.result = run_sweep(self.spec, None, self.options, self.ctx)
            self.state = "done"
        except Cancelled:
            self.state = "cancelled"
        except WorkbenchError as e:
            self.error, self.state = e.one_line(), "failed"
        except Exception as e:  # noqa: BLE001 - the UI gets one line; the log keeps the trace
            log.error("sweep %s failed:\n%s", self.spec, traceback.format_exc())
            self.error = f"internal_error: {type(e).__name__} (hint: see the server log; please report it)"
            self.state = "failed"
        finally:
            self.finished = time.time()
