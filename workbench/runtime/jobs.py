"""Background jobs for the app: a run in a worker thread with progress and cancel."""

from __future__ import annotations

import logging
import threading
import time
import traceback

from workbench.core.errors import Cancelled, WorkbenchError
from workbench.runtime.context import RunContext
from workbench.runtime.runner import RunSpec, run

log = logging.getLogger("workbench.jobs")

#: jobs of this process still running, oldest first: a new job that has not started its work yet is shown as
#: queued behind them (a model is held by one run at a time; tracing analyzers run alone)
_ACTIVE: list[Job] = []
_ACTIVE_LOCK = threading.Lock()


class Job:
    """One analysis run off the UI thread. ``state``: running | done | failed | cancelled."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.ctx = RunContext()
        self.state = "running"
        self.result = None
        self.error = ""
        self.started = time.time()
        self.finished: float | None = None
        self._thread = threading.Thread(target=self._work, daemon=True, name=f"job-{spec.analyzer}")

    @property
    def fraction(self) -> float:
        return self.ctx.fraction

    @property
    def message(self) -> str:
        return self.ctx.message

    @property
    def done(self) -> bool:
        return self.state != "running"

    @property
    def label(self) -> str:
        """What runs, in words: "lrp on digits_vgg.sk"."""
        return f"{self.spec.analyzer.replace('_', ' ')}" + (f" on {self.spec.model}" if self.spec.model else "")

    def queued_behind(self) -> list[Job]:
        """Earlier jobs still running while this one has not reported any progress of its own (it waits for
        the shared model, the run gate or the CPU they hold); empty once this job makes progress."""
        if self.done or self.ctx.fraction > 0:
            return []
        with _ACTIVE_LOCK:
            return [j for j in _ACTIVE if j is not self and not j.done and j.started <= self.started]

    def eta_s(self) -> float | None:
        """Seconds left, extrapolated from the time the run took for the fraction done so far (its first
        unit of work, e.g. one epoch or one cell, is the calibration); None before 3% or in the first 2 s."""
        spent, f = time.time() - self.started, self.ctx.fraction
        if self.done or f < 0.03 or spent < 2 or f >= 1:
            return None
        return spent * (1 - f) / f

    def start(self) -> Job:
        with _ACTIVE_LOCK:
            _ACTIVE.append(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.ctx.cancel.cancel()

    def wait(self, timeout: float | None = None) -> Job:
        self._thread.join(timeout)
        return self

    def _compute(self):
        """The work itself (a sweep job runs a grid instead: workbench/sweep/jobs.py)."""
        return run(self.spec, self.ctx)

    def _work(self) -> None:
        try:
            self.result = self._compute()
            self.state = "done"
        except Cancelled:
            self.state = "cancelled"
        except WorkbenchError as e:
            self.error, self.state = e.one_line(), "failed"
        except Exception as e:  # noqa: BLE001 - the UI gets one line; the log keeps the trace
            log.error("job %s failed:\n%s", self.spec, traceback.format_exc())
            self.error = f"internal_error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            self.error += " (hint: see the server log; please report it)"
            self.state = "failed"
        finally:
            self.finished = time.time()
            with _ACTIVE_LOCK:
                if self in _ACTIVE:
                    _ACTIVE.remove(self)


def start_job(spec: RunSpec) -> Job:
    return Job(spec).start()
