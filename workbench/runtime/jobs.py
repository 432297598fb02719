"""Background jobs for the app: a run in a worker thread with progress and cancel, and the warnings it raised.

Warnings of a job (a loader's "channels matched loosely", a library's UserWarning) go to the job, not the
server log: ``warnings.catch_warnings`` swaps process-wide state and is not thread-safe (a job running beside
another would catch the other's warnings), so a process-wide ``warnings.showwarning`` wrapper, installed once
(and again if something replaced it), sends a warning raised on a thread that runs a job (a thread-local set by
the job runner) to that job's list, one line each, without repeats, and any other to the previous handler.
The filter: Python's "default" action shows a warning once per location per process (``__warningregistry__``
of the module that warned), which would hide the second job's identical warning; so one "always" filter is
appended after every other filter (it only takes what would have fallen to the "default" action, so ignore
filters, -W and PYTHONWARNINGS still win), and the wrapper keeps "default" for other threads itself: once per
(text, category, file, line). Threads a job starts itself do not carry the thread-local: theirs go to the log."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
import warnings

from workbench.core.errors import Cancelled, WorkbenchError
from workbench.runtime.context import RunContext
from workbench.runtime.runner import RunSpec, run

log = logging.getLogger("workbench.jobs")

#: jobs of this process still running, oldest first: a new job that has not started its work yet is shown as
#: queued behind them (a model is held by one run at a time; tracing analyzers run alone)
_ACTIVE: list[Job] = []
_ACTIVE_LOCK = threading.Lock()


#: the job the current thread runs (``_CURRENT.job``), read by the warnings wrapper below
_CURRENT = threading.local()
_STOCK_SHOWWARNING = warnings.showwarning
_PREVIOUS = {"showwarning": _STOCK_SHOWWARNING}
_SHOWN_ELSEWHERE: set[tuple] = set()  # warnings of other threads shown so far: the "default" action's once-per-place
_MAX_WARNINGS = 20  # per job: a warning in a loop must not flood the page


def warning_line(message, category=UserWarning) -> str:
    """One line for a warning: its first line, prefixed by its category unless it is a plain UserWarning."""
    text = (str(message).strip().splitlines() or [""])[0][:300]
    return text if category is UserWarning else f"{category.__name__}: {text}"


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    job = getattr(_CURRENT, "job", None)
    if job is not None:
        one = warning_line(message, category)
        if one not in job.warnings and len(job.warnings) < _MAX_WARNINGS:
            job.warnings.append(one)
        return
    if getattr(_CURRENT, "passing", False):  # a handler installed after ours wraps ours: called us again
        _STOCK_SHOWWARNING(message, category, filename, lineno, file, line)
        return
    key = (str(message), category, filename, lineno)
    if key in _SHOWN_ELSEWHERE:
        return
    if len(_SHOWN_ELSEWHERE) < 10_000:
        _SHOWN_ELSEWHERE.add(key)
    show = _PREVIOUS["showwarning"]
    _CURRENT.passing = True
    try:
        show(message, category, filename, lineno, file, line)
    finally:
        _CURRENT.passing = False


def route_warnings() -> None:
    """Install the wrapper and the trailing "always" filter (see the module doc); again if something (a
    ``catch_warnings`` block ending, a test) put back what was there before. Idempotent."""
    if warnings.showwarning is not _showwarning:
        _PREVIOUS["showwarning"] = warnings.showwarning
        warnings.showwarning = _showwarning
    if ("always", None, Warning, None, 0) not in warnings.filters:
        warnings.filterwarnings("always", category=Warning, append=True)


class _Collector:
    def __init__(self) -> None:
        self.warnings: list[str] = []


@contextlib.contextmanager
def collected_warnings():
    """``with collected_warnings() as lines:`` the warnings raised on this thread inside the block, one line
    each, no repeats: the jobs' route, for code on the UI thread (unlike ``catch_warnings(record=True)``, a
    job running meanwhile keeps its own warnings)."""
    route_warnings()
    before, collector = getattr(_CURRENT, "job", None), _Collector()
    _CURRENT.job = collector
    try:
        yield collector.warnings
    finally:
        _CURRENT.job = before


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
        #: warnings raised on the job's thread while it ran, one line each, no repeats (see the module doc)
        self.warnings: list[str] = []
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
        route_warnings()
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
        _CURRENT.job = self
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
            _CURRENT.job = None
            self.finished = time.time()
            with _ACTIVE_LOCK:
                if self in _ACTIVE:
                    _ACTIVE.remove(self)


def start_job(spec: RunSpec) -> Job:
    return Job(spec).start()
