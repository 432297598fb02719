"""One analyzer call split into sweep cells and merged back: the grid-shaped analyzers (transferability's
cuts x seeds, an EEG leave-one-subject-out protocol, ...) scale out on the sweep's executors and cache while
the merged Result equals the single call's (bit for bit on the CPU for the same seeds, timings aside).

An analyzer opts in with two hooks (class attributes, pure functions in its own package; another object
with the same two functions may be passed as ``hooks``):

- ``split(config: dict, seed: int, model: str, data: str | None) -> list[Part]``: the cells of one call
  with the full validated ``config`` (a Part is Config overrides of the analyzer, or a call of a function
  in the analyzer's package, see workbench/sweep/grid.py);
- ``merge(config: dict, seed: int, parts: list[Result]) -> Result``: the call's Result from the parts'
  Results, in split order.

The cells are ordinary sweep cells: keyed by content, cached (a killed split call resumes, a repeated one
computes nothing), run by ``local`` (a process pool), ``ray`` or in this process.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from pathlib import Path

from workbench.core.analyzer import get_analyzer
from workbench.core.config import from_dict, to_dict
from workbench.core.errors import ComputeError, ConfigError
from workbench.core.result import Check, Provenance, Result
from workbench.runtime.context import RunContext
from workbench.runtime.runner import RunSpec, config_values
from workbench.sweep.cache import CellCache
from workbench.sweep.engine import RESULT_DIR, RunOptions, run_sweep
from workbench.sweep.grid import DEFAULT_THREADS, SweepSpec


@dataclasses.dataclass
class Part:
    """One cell of a split call: ``params`` = Config overrides (or the function's arguments when ``call``
    names one, "package.module:function"), ``seed`` the cell's run seed."""

    params: dict
    seed: int
    call: str = ""
    data: str | None = None  # this cell's own data id (a chunk of the call's data set); None = the call's

    def to_json(self) -> dict:
        return {"params": dict(self.params), "seed": int(self.seed), "call": self.call, "data": self.data}


def hooks_of(analyzer: str, batch_size: int = 32):
    """The analyzer class when it declares ``split`` and ``merge`` (a per-sample analyzer's ``split`` may return
    None for a call it does not split itself: then its data set goes in chunks, as below); a per-sample
    analyzer's data set in chunks of samples (workbench/sweep/chunks.py) otherwise; else a one-line ConfigError."""
    cls = get_analyzer(analyzer)
    if cls.per_sample and not callable(getattr(cls, "split", None)):
        from workbench.sweep.chunks import DataSetChunks

        return DataSetChunks(cls, batch_size)
    if not (callable(getattr(cls, "split", None)) and callable(getattr(cls, "merge", None))):
        raise ConfigError(f"{cls.name} does not split into sweep cells",
                          "run it with `workbench run`, or sweep its Config fields with --grid")
    return cls


@dataclasses.dataclass
class SplitOptions:
    """Where and how the cells of a split call run: ``options`` as for a sweep, ``out`` the sweep folder
    (None: cells go to ``options.cache``), ``device``, torch ``threads`` per cell, ``batch_size``."""

    options: RunOptions = dataclasses.field(default_factory=RunOptions)
    out: str | Path | None = None
    device: str = "cpu"
    threads: int = DEFAULT_THREADS
    batch_size: int = 32


def run_split(analyzer: str, model: str | None, data: str | None, config: dict | None = None, seed: int = 0,
              how: SplitOptions | None = None, ctx: RunContext | None = None, hooks=None, on_event=None,
              extras=None) -> Result:
    """The Result of one ``analyzer`` call on ``model`` / ``data`` with ``config`` and ``seed``, computed as
    the analyzer's split cells on ``how.options.executor`` and merged; saved to ``how.out/result`` when
    ``how.out`` is given (cells in ``how.out/cells`` unless ``how.options.cache``). ``on_event`` / ``extras``
    as for :func:`workbench.sweep.engine.run_sweep`. Raises ComputeError naming the first cell that failed
    (the finished ones stay cached), Cancelled when cancelled."""
    how, t0 = how or SplitOptions(), time.perf_counter()
    if how.out is None and how.options.cache is None:
        raise ConfigError("a split call needs a folder for its cells", "give out=DIR or cache=DIR")
    options = dataclasses.replace(how.options, cache=how.options.cache or Path(how.out) / "cells")
    cls = get_analyzer(analyzer)
    hooks = hooks or hooks_of(analyzer, how.batch_size)
    # the runner's reading of the arguments (e.g. --data mnist1d fills transferability's dataset)
    full = to_dict(from_dict(cls.Config, config_values(cls, RunSpec(cls.name, model or "", data, dict(config or {})))))
    raw = hooks.split(dict(full), int(seed), model or "", data)
    if raw is None and cls.per_sample:  # "nothing of mine to split in this call": the data set's chunks, as for
        from workbench.sweep.chunks import DataSetChunks  # any per-sample analyzer (eeg_saliency without LOSO)

        hooks = DataSetChunks(cls, how.batch_size)
        raw = hooks.split(dict(full), int(seed), model or "", data)
    parts = [p if isinstance(p, Part) else Part(**p) for p in raw or []]
    if not parts:
        raise ConfigError(f"{cls.name} split this call into no cells", "check its config")
    spec = SweepSpec(cls.name, [model or ""], [data], {}, full, [int(seed)], device=how.device,
                     threads=how.threads, batch_size=how.batch_size, parts=[p.to_json() for p in parts])
    sweep = run_sweep(spec, None, options, ctx, on_event)
    failed = sweep.info.get("failed", {})
    if failed:
        label, line = next(iter(failed.items()))
        raise ComputeError(f"cell {label} of the split {cls.name} call failed: {line}",
                           "fix the cause and run again: finished cells are reused")
    cache = CellCache(options.cache)
    results = [cache.load(c["key"]) for c in sweep.info["cells"]]
    if any(r is None for r in results):  # pragma: no cover - a cell removed from disk under the sweep
        raise ComputeError("a finished cell of the split call no longer reads back", "run it again")
    merged = hooks.merge(dict(full), int(seed), results)
    merged = _stamp(merged, cls, full, results[0], sweep, t0, data if any(p.data for p in parts) else None)
    if how.out is not None:
        merged.save(Path(how.out) / RESULT_DIR, force=True, extras=extras(merged) if extras else None)
    return merged


def _stamp(result: Result, cls, config: dict, first: Result, sweep, t0: float, data: str | None) -> Result:
    """Names, config, the finite-values check and provenance as the runner stamps a single call; the run
    information (executor, workers, cells computed and reused) goes to ``info["split"]``. ``data``: the call's
    data id where the cells ran on chunks of it."""
    result.analyzer, result.model, result.data = cls.name, first.model, data or first.data
    result.config = dict(config)
    result.checks = [c for c in result.checks if c.name != "finite_values"]
    bad = result.nonfinite_count()
    result.checks.append(Check("finite_values", bad == 0, bad, 0, "all stored arrays are finite" if bad == 0
                               else f"{bad} NaN/inf values in the stored arrays"))
    p = first.provenance
    result.provenance = Provenance(model_id=first.model, weights_sha256=p.weights_sha256, data_id=result.data,
                                   seed=int(sweep.info["seeds"][0]) if sweep.info.get("seeds") else p.seed,
                                   device=p.device, dtype=p.dtype, versions=p.versions,
                                   duration_s=round(time.perf_counter() - t0, 4),
                                   created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    result.info["split"] = {**sweep.info.get("run", {}), "cells": len(sweep.info.get("cells", []))}
    return result
