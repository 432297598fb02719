"""What runs one cell, in whichever process the executor picked.

:func:`run_cell` goes through the one runner (:func:`workbench.runtime.runner.run`), so a cell gives the
same Result as ``workbench run`` with the same config and seed. Models are loaded once per process: the
runner keeps pristine models in its bounded per-process cache, and a pool or Ray worker lives for the
whole sweep. The outcome is plain data (result JSON + arrays) so it crosses process boundaries without
pickling Result objects; the driver is the only process that writes the cache.
"""

from __future__ import annotations

import os
import signal
import threading
import time

#: set in pool workers by :func:`init_worker`: (progress queue, stop event)
_POOL: dict = {}
PROGRESS_STEP = 0.05  # a cell reports at most ~20 progress events: the queue stays cheap


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads; returns the previous count (to restore in-process)."""
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    return before


def limit_blas(threads: int) -> None:
    """numpy's BLAS / OpenMP pools of this worker process to ``threads`` (torch's own count is set apart):
    the fork server imported numpy before the worker existed, so environment variables come too late, and
    every worker's BLAS would otherwise start one thread per core (workers x cores threads on the cores)."""
    try:
        from threadpoolctl import threadpool_limits  # ships with scikit-learn
    except ImportError:  # pragma: no cover - BLAS keeps its own count
        return
    threadpool_limits(limits=threads)


def init_worker(threads: int, queue, stop, driver: int) -> None:
    """Pool worker start-up: passive OpenMP waits, a fixed thread count, Ctrl-C left to the driver (it
    cancels through ``stop``), and exit once the driver process is gone: a SIGKILLed sweep leaves no
    orphans. The driver itself is watched, not the parent: a worker's parent is the fork server, which
    stays up while its workers hold their end of its pipes (seen: server and workers left running)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _POOL.update(queue=queue, stop=stop)
    set_threads(threads)
    limit_blas(threads)
    threading.Thread(target=_watch_driver, args=(driver,), daemon=True, name="watch-driver").start()


def _watch_driver(driver: int) -> None:
    while True:
        try:
            os.kill(driver, 0)  # signal 0 only asks whether the process exists
        except ProcessLookupError:
            os._exit(3)  # the driver is gone; nobody will read this cell's result
        except PermissionError:
            pass
        time.sleep(1.0)


def pool_cell(payload: dict) -> dict:
    """A cell in a pool worker: progress goes to the driver's queue, cancel comes from its stop event."""
    queue, stop = _POOL["queue"], _POOL["stop"]
    last = [-1.0]

    def report(fraction: float, message: str) -> None:
        if stop.is_set():
            raise_cancelled()
        if fraction - last[0] >= PROGRESS_STEP or fraction >= 1.0:
            last[0] = fraction
            queue.put(("progress", payload["key"], (fraction, message)))

    return run_cell(payload, report)


def raise_cancelled() -> None:
    from workbench.core.errors import Cancelled

    raise Cancelled("the sweep was cancelled", "run the same sweep again to resume")


def run_cell(payload: dict, on_progress=None, cancel=None) -> dict:
    """Run one cell (``payload`` from :meth:`Cell.payload`); returns {"key", "doc", "arrays", "wall_s"}.
    ``cancel``: an optional CancelToken shared with the caller (in-process runs)."""
    from workbench.runtime.context import RunContext
    from workbench.runtime.runner import RunSpec, run

    t0 = time.perf_counter()
    ctx = RunContext(on_progress=on_progress)
    if cancel is not None:
        ctx.cancel = cancel
    if payload.get("call"):
        result = run_call(payload, ctx)
        return {"key": payload["key"], "doc": result.to_json(), "arrays": dict(result.arrays),
                "wall_s": time.perf_counter() - t0, "threads": _threads()}
    spec = RunSpec(payload["analyzer"], payload["model"], payload["data"], dict(payload["config"]),
                   payload["device"], payload["seed"], payload.get("batch_size", 32))
    result = run(spec, ctx)
    return {"key": payload["key"], "doc": result.to_json(), "arrays": dict(result.arrays),
            "wall_s": time.perf_counter() - t0, "threads": _threads()}


def _threads() -> int:
    """torch's intra-op threads in the process that ran the cell (the run info reports what cells saw)."""
    import torch

    return int(torch.get_num_threads())


def run_call(payload: dict, ctx):
    """A call cell (see workbench/sweep/grid.py): ``fn(card | None, data_id, args, ctx) -> Result`` of the
    function the payload names inside its analyzer's package (checked again here: payloads cross processes),
    seeded and stamped with provenance the way the runner stamps a run."""
    import datetime as _dt
    import importlib

    import numpy as np
    import torch

    from workbench.core.analyzer import get_analyzer
    from workbench.core.result import Provenance
    from workbench.runtime.device import pick_device
    from workbench.runtime.runner import library_versions
    from workbench.runtime.session import lookup_card
    from workbench.sweep.grid import check_call

    t0 = time.perf_counter()
    cls = get_analyzer(payload["analyzer"])
    module, _, name = check_call(cls, payload["call"]).partition(":")
    fn = getattr(importlib.import_module(module), name)
    card = lookup_card(payload["model"]) if payload.get("model") else None
    ctx.device, ctx.seed, ctx.batch_size = pick_device(payload["device"]), int(payload["seed"]), \
        int(payload.get("batch_size", 32))
    torch.manual_seed(ctx.seed)
    np.random.seed(ctx.seed % (2**32))
    result = fn(card, payload.get("data"), dict(payload["config"]), ctx)
    result.analyzer, result.model, result.data = cls.name, card.id if card else "", payload.get("data") or ""
    result.config = {"call": payload["call"], **payload["config"]}
    result.provenance = Provenance(
        model_id=result.model, weights_sha256=card.sha256 if card else "", data_id=result.data, seed=ctx.seed,
        device=ctx.device, dtype=ctx.dtype, versions=library_versions(cls.libraries),
        duration_s=round(time.perf_counter() - t0, 4), created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    return result
