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

    def start(self) -> Job:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.ctx.cancel.cancel()

    def wait(self, timeout: float | None = None) -> Job:
        self._thread.join(timeout)
        return self

    def _work(self) -> None:
        try:
            self.result = run(self.spec, self.ctx)
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


def start_job(spec: RunSpec) -> Job:
    return Job(spec).start()
