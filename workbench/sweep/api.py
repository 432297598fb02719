"""``sweep(...)``: the Python call behind ``wb.sweep`` (``workbench.api.sweep`` turns in-memory modules and
arrays into session ids first, then calls this)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.runtime.context import RunContext
from workbench.sweep.engine import RunOptions, run_sweep
from workbench.sweep.grid import DEFAULT_THREADS, SweepSpec, parse_seeds
from workbench.sweep.result import SweepResult
from workbench.sweep.split import SplitOptions, run_split


def default_cache() -> Path:
    """``<home>/sweep-cells`` with the zoo's home (``$WORKBENCH_HOME`` or ~/.cache/workbench)."""
    from workbench.runtime.zoo import home

    return home() / "sweep-cells"


def _ids(value, what: str) -> list:
    if value is None:
        return [None] if what == "data" else [""]
    if isinstance(value, (str, Path)):
        return [str(value)]
    items = [getattr(v, "id", v) for v in value]  # ModelCards pass by id
    if not items:
        raise ConfigError(f"no {what} given", f"pass one {what} id or a list of them")
    return [str(v) if v is not None else None for v in items]


def _seeds(seeds) -> list[int]:
    if isinstance(seeds, str):
        return parse_seeds(seeds)
    if isinstance(seeds, int):
        return [seeds]
    return parse_seeds(",".join(str(int(s)) for s in seeds))


def sweep(analyzer: str, models=None, data=None, *, grid: dict | None = None, seeds: Iterable[int] | str = (0,),
          executor: str = "local", workers: int | None = None, out: str | Path | None = None,
          cache: str | Path | None = None, threads: int = DEFAULT_THREADS, device: str = "auto",
          metric: str = "", progress: Callable[[float, str], None] | None = None,
          gpus_per_task: float | None = None, batch_size: int = 32, ctx: RunContext | None = None,
          split: bool = False, **config) -> SweepResult:
    """Run a sweep and return its SweepResult. ``models``: zoo or session ids (one or a list); ``data``: data
    ids (one or a list; None = each card's default); ``grid``: Config field -> values; ``seeds``: ints or
    "0-4"; other keywords fix Config values. Cells go to ``cache`` (default ``out/cells``, or
    <workbench home>/sweep-cells without ``out``).

    ``split=True``: one call of the analyzer (one model, data id and seed; no grid) split into its own cells
    (transferability's seeds x cuts, a per-sample analyzer's data set in chunks of samples; see
    workbench/sweep/split.py) and merged: returns the analyzer's Result, equal to ``wb.run``'s."""
    if split:
        return _split(analyzer, models, data, grid, seeds, config,
                      SplitOptions(RunOptions(executor, workers, cache if cache or out else default_cache(),
                                              gpus_per_task), out, device, int(threads), batch_size), ctx, progress)
    spec = SweepSpec(analyzer, _ids(models, "model"), _ids(data, "data"), dict(grid or {}), dict(config),
                     _seeds(seeds), metric, device, int(threads), batch_size)
    if out is None and cache is None:
        cache = default_cache()
    ctx = ctx or RunContext(on_progress=progress)
    return run_sweep(spec, out, RunOptions(executor, workers, cache, gpus_per_task), ctx)


def _split(analyzer: str, models, data, grid, seeds, config: dict, how: SplitOptions, ctx, progress):
    model, data_id, seed = _ids(models, "model"), _ids(data, "data"), _seeds(seeds)
    if grid or len(model) > 1 or len(data_id) > 1 or len(seed) > 1:
        raise ConfigError("split=True runs one call: one model, one data id, one seed and no grid",
                          "drop split=True to sweep a grid")
    return run_split(analyzer, model[0] or None, data_id[0], config, seed[0], how,
                     ctx or RunContext(on_progress=progress))
