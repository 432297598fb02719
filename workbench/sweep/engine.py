"""Run a sweep: expand the grid, reuse the cells the cache holds, run the others on an executor, store
each as it finishes, aggregate them into a :class:`SweepResult`.

Layout of ``out``: ``result/`` (the SweepResult, a normal saved Result folder: result.json, arrays.npz,
report.html from the CLI; replaced on every run), ``sweep.json`` (the spec and every cell's key and grid
values) and ``cells/<key>/`` (one saved Result per cell, unless ``cache`` points elsewhere: cells are
keyed by content, so sweeps may share one cache).
A re-run, or a run after a kill, computes only the cells whose folder is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from workbench.core.analyzer import get_analyzer
from workbench.core.errors import Cancelled, ConfigError, UnsupportedModelError
from workbench.core.result import Result
from workbench.runtime.context import RunContext
from workbench.runtime.device import pick_device
from workbench.runtime.session import FAMILY, lookup_card
from workbench.sweep.cache import CellCache
from workbench.sweep.executors import InProcess, make_executor
from workbench.sweep.grid import Cell, SweepSpec, expand
from workbench.sweep.result import SweepResult


@dataclasses.dataclass
class RunOptions:
    """How to run a sweep: ``executor`` local | ray | ray:ADDRESS, ``workers`` (None: cores // threads;
    1 with local: in this process), ``cache`` (default ``out/cells``), ``gpus_per_task`` (Ray)."""

    executor: str = "local"
    workers: int | None = None
    cache: str | Path | None = None
    gpus_per_task: float | None = None


def _cards(spec: SweepSpec) -> tuple[dict, dict, bool]:
    """(model -> weights sha256, model -> default data id, whether a session model or session data is
    involved: those live in this process only)."""
    cls = get_analyzer(spec.analyzer)
    weights, data_for, local_only = {}, {}, False
    for model in spec.models:
        if not model:
            if cls.needs_model:
                raise ConfigError(f"{cls.name} needs a model", "give --model ID (see `workbench zoo list`)")
            continue
        card = lookup_card(model)
        if not cls.accepts(card):
            raise UnsupportedModelError(f"{cls.name} does not support {card.kind} models like {card.id}",
                                        f"it supports {', '.join(cls.supports)}")
        sha = card.status(card).get("sha256") or card.sha256
        weights[model] = sha or f"{card.weights_source}:seed={card.seed}"
        data_for[model] = card.default_data
        local_only |= card.family == FAMILY
    local_only |= any(str(d or "").startswith(f"{FAMILY}:") for d in spec.data)
    return weights, data_for, local_only


def plan(spec: SweepSpec) -> tuple[list[Cell], str, bool]:
    """(cells, resolved device, in-process only); raises a one-line ConfigError before anything runs."""
    weights, data_for, local_only = _cards(spec)
    device = pick_device(spec.device)
    return expand(spec, weights, data_for, device), device, local_only


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


class _Tracker:
    """Grid-level progress: finished cells plus the running cells' fractions, over the cells to compute."""

    def __init__(self, ctx: RunContext, todo: int, total: int) -> None:
        self.ctx, self.todo, self.total, self.running, self.finished = ctx, max(1, todo), total, {}, 0

    def cell(self, key: str, fraction: float) -> None:
        self.running[key] = fraction
        self._report()

    def finish(self, key: str) -> None:
        self.running.pop(key, None)
        self.finished += 1
        self._report()

    def _report(self) -> None:
        frac = (self.finished + sum(self.running.values())) / self.todo
        self.ctx.progress(min(frac, 1.0), f"{self.finished}/{self.todo} cells computed ({self.total} in the grid)")


RESULT_DIR = "result"


def run_sweep(spec: SweepSpec, out: str | Path | None = None, options: RunOptions | None = None,
              ctx: RunContext | None = None, on_event: Callable | None = None,
              extras: Callable | None = None) -> SweepResult:
    """Run ``spec``; returns the aggregate (saved to ``out`` when given). ``ctx``: progress over the whole
    grid, cancel, and live snapshots (``ctx.live["sweep"]``: the aggregate so far, after every cell).
    ``on_event(kind, cell, data)``: kind = "progress" | "done" | "failed" | "reused", per cell.
    ``extras(result) -> {name: bytes}``: more files for ``out/result/`` (the CLI's report.html).
    Raises Cancelled when cancelled (finished cells stay in the cache)."""
    options, ctx, t0 = options or RunOptions(), ctx or RunContext(), time.perf_counter()
    if out is None and options.cache is None:
        raise ConfigError("a sweep needs a folder for its cells", "give out=DIR or cache=DIR")
    cells, device, local_only = plan(spec)
    cache = CellCache(options.cache or Path(out) / "cells")
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        _write_json(Path(out) / "sweep.json", {"spec": spec.to_json(), "device": device, "cells": [
            {"key": c.key, "model": c.model, "data": c.data, "params": c.params, "seed": c.seed} for c in cells]})
    by_key = {c.key: c for c in cells}
    loaded = {c.key: cache.load(c.key) for c in cells if cache.done(c.key)}
    results: dict[str, Result] = {k: r for k, r in loaded.items() if r is not None}
    damaged = {k for k, r in loaded.items() if r is None}
    for key in results:
        _emit(on_event, "reused", by_key[key], None)
    todo = list({c.key: c for c in cells if c.key not in results}.values())  # same content twice: run once
    executor = _executor(options, spec, len(todo), local_only)
    failures, tracker, threads_seen = {}, _Tracker(ctx, len(todo), len(cells)), set()
    ctx.progress(0.0, f"{len(results)} of {len(cells)} cells cached, {len(todo)} to compute")
    resolved = dataclasses.replace(spec, device=device)

    def progress(key: str, fraction: float, message: str) -> None:  # in-process cells report directly
        tracker.cell(key, fraction)
        _emit(on_event, "progress", by_key[key], (fraction, message))

    events = executor.map([c.payload(resolved) for c in todo], ctx.cancel, progress) if todo else iter(())
    try:
        for kind, key, data in events:
            if kind == "progress":
                tracker.cell(key, data[0])
            elif kind == "done":
                threads_seen.add(int(data.get("threads", 0)))
                results[key] = Result.from_json(data["doc"], data["arrays"])
                cache.store(key, results[key], replace=key in damaged)
                tracker.finish(key)
                ctx.publish("sweep", _aggregate(spec, cells, results, failures, {}))
            elif data != "cancelled":
                failures[key] = data
                tracker.finish(key)
            _emit(on_event, kind, by_key[key], data)
    finally:
        if hasattr(events, "close"):
            events.close()  # stops the running cells now (Ctrl-C, cancel), not when the generator is collected
    if ctx.cancel.cancelled:
        raise Cancelled(f"the sweep was cancelled; {len(results)} of {len(cells)} cells are kept",
                        "run the same sweep again to resume")
    run_info = {**executor.describe(), "computed": len(todo) - len(failures), "reused": len(cells) - len(todo),
                "wall_s": round(time.perf_counter() - t0, 3), "device": device,
                "threads_seen": sorted(threads_seen)}  # torch threads the computed cells ran with
    result = _aggregate(spec, cells, results, failures, run_info)
    files = extras(result) if extras is not None else None
    if out is not None:
        result.save(Path(out) / RESULT_DIR, force=True, extras=files)
    return result


def _executor(options: RunOptions, spec: SweepSpec, todo: int, local_only: bool):
    if local_only:  # session cards and session data exist in this process only
        if options.executor != "local" or (options.workers or 1) > 1:
            raise ConfigError("an in-memory model or data set can only be swept in this process",
                              "use executor='local', workers=1, or a zoo model")
        return InProcess(1, spec.threads)
    workers = options.workers if options.workers is None else min(options.workers, max(1, todo))
    return make_executor(options.executor, workers, spec.threads, options.gpus_per_task)


def _aggregate(spec: SweepSpec, cells: list[Cell], results: dict, failures: dict, run_info: dict) -> SweepResult:
    return SweepResult.build(spec.to_json(), cells, results, failures, run_info)


def _emit(on_event, kind: str, cell: Cell, data) -> None:
    if on_event is not None:
        on_event(kind, cell, data)
