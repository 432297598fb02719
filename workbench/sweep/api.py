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
          **config) -> SweepResult:
    """Run a sweep and return its SweepResult. ``models``: zoo or session ids (one or a list); ``data``: data
    ids (one or a list; None = each card's default); ``grid``: Config field -> values; ``seeds``: ints or
    "0-4"; other keywords fix Config values. Cells go to ``cache`` (default ``out/cells``, or
    <workbench home>/sweep-cells without ``out``)."""
    spec = SweepSpec(analyzer, _ids(models, "model"), _ids(data, "data"), dict(grid or {}), dict(config),
                     _seeds(seeds), metric, device, int(threads), batch_size)
    if out is None and cache is None:
        cache = default_cache()
    ctx = ctx or RunContext(on_progress=progress)
    return run_sweep(spec, out, RunOptions(executor, workers, cache, gpus_per_task), ctx)
