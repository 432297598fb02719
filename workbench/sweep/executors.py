"""One executor interface, three ways to run cells: in-process, a local process pool, Ray.

``Executor.map(payloads, cancel)`` is a generator of events ``(kind, key, data)``:

- ``("progress", key, (fraction, message))`` while a cell runs (in-process and local pool only);
- ``("done", key, outcome)`` with ``outcome`` = {"key", "doc", "arrays", "wall_s"} (see ``worker.run_cell``);
- ``("failed", key, "one line")`` when a cell raised (its error, typed: a bad combination stays one line).

Closing the generator (the caller stopped iterating: Ctrl-C, a cancelled job) or setting ``cancel``
stops the running cells at their next progress call and drops the queued ones; what finished was
already yielded, so the caller has stored it.
"""

from __future__ import annotations

import os
import queue as _queue
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from workbench.core.errors import Cancelled, ConfigError
from workbench.sweep import worker
from workbench.sweep.base import Executor, _one_line, default_workers

KINDS = ("local", "ray")
STOP_GRACE_S = 10.0  # running cells get this long to reach a progress call after a cancel, then are killed


class InProcess(Executor):
    """Cells one after another in this process (``workers=1``): nothing to start, session models work."""

    name = "sequential"

    def map(self, payloads: list[dict], cancel, progress=None):
        before = worker.set_threads(self.threads)
        try:
            for p in payloads:
                if cancel.cancelled:
                    raise Cancelled("the sweep was cancelled", "run the same sweep again to resume")
                report = None if progress is None else (lambda f, m, k=p["key"]: progress(k, f, m))
                try:
                    out = worker.run_cell(p, report, cancel)
                except Cancelled:
                    raise
                except Exception as e:  # noqa: BLE001 - one failing cell must not lose the others
                    yield "failed", p["key"], _one_line(e)
                    continue
                yield "done", p["key"], out
        finally:
            worker.set_threads(before)


class LocalPool(Executor):
    """A process pool of ``workers`` processes, each with ``threads`` torch threads, OMP_WAIT_POLICY=PASSIVE,
    Ctrl-C ignored (the driver cancels) and a watch on its parent so a killed sweep leaves no orphans.
    ``forkserver``, not ``fork``: workers fork from a clean server that imported torch and the plug-ins
    once (workbench/sweep/preload.py) and never ran a torch op, not from the driver's threads."""

    name = "local"

    def map(self, payloads: list[dict], cancel, progress=None):
        import multiprocessing as mp

        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the fork server inherits it, workers too
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["workbench.sweep.preload"])
        events, stop = ctx.Queue(), ctx.Event()
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(payloads)), mp_context=ctx,
                                   initializer=worker.init_worker,
                                   initargs=(self.threads, events, stop, os.getpid()))
        futures = {pool.submit(worker.pool_cell, p): p["key"] for p in payloads}
        pending, finished = set(futures), False
        try:
            while pending:
                if cancel.cancelled:
                    raise Cancelled("the sweep was cancelled", "run the same sweep again to resume")
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                yield from _drain(events)
                for f in done:
                    yield _outcome(f, futures[f])
            finished = True
        finally:
            if not finished:
                stop.set()
            for f in pending:
                f.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            _reap(pool, events)
            events.close()


def _drain(events):
    while True:
        try:
            yield events.get_nowait()
        except (_queue.Empty, OSError, ValueError):
            return


def _outcome(future, key: str) -> tuple:
    try:
        return "done", key, future.result()
    except Cancelled:
        return "failed", key, "cancelled"
    except BrokenProcessPool:
        return "failed", key, "compute_error: a worker process died (out of memory?) while running this cell"
    except Exception as e:  # noqa: BLE001 - the cell's own error, one line
        return "failed", key, _one_line(e)


def _reap(pool: ProcessPoolExecutor, events) -> None:
    """Wait for the workers to leave; kill those still busy after the grace period. ProcessPoolExecutor has
    no public way to stop a running task, hence its private process table (read-only use)."""
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
    for _ in _drain(events):
        pass
    pool.shutdown(wait=True, cancel_futures=True)


def make_executor(executor: str = "local", workers: int | None = None, threads: int = 1,
                  gpus_per_task: float | None = None) -> Executor:
    """``local`` | ``ray`` | ``ray:ADDRESS`` (``WORKBENCH_RAY_ADDRESS`` names a cluster for plain ``ray``).
    ``workers=1`` with ``local`` runs in this process; None = cores // threads."""
    kind, _, address = str(executor or "local").partition(":")
    if kind not in KINDS:
        raise ConfigError(f"unknown executor {executor!r}", "use local, ray or ray:ADDRESS")
    if workers is not None and int(workers) < 1:
        raise ConfigError(f"workers={workers} must be at least 1", "give --workers 1 or more")
    n = default_workers(threads) if workers is None else int(workers)
    if kind == "ray":
        from workbench.sweep.ray_backend import RayExecutor

        return RayExecutor(n, threads, address or os.environ.get("WORKBENCH_RAY_ADDRESS", ""), gpus_per_task)
    return InProcess(1, threads) if n == 1 else LocalPool(n, threads)
