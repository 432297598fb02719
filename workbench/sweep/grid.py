"""Sweep grids: parse ``--grid key=v1,v2`` and ``--seeds 0-4``, expand into cells, key every cell by a
content hash.

A cell is one analyzer run: (model, data, config, seed). Its key is the sha256 of a canonical JSON of
everything its result depends on: analyzer name, model id and weights sha256 (from the card), data id,
the full validated config, the seed, the library versions (python, torch, torchvision, numpy,
cnn-workbench and the analyzer's declared ``libraries``), a hash of the analyzer package's source files
(an edited analyzer must not reuse cells of its old code: the package version does not change with it),
the device kind and the torch thread count per cell (float sums in backward passes depend on the thread
count, see :data:`DEFAULT_THREADS`).

A spec may list its cells instead of a grid (``parts``: what an analyzer's own ``split`` hook returns, see
workbench/sweep/split.py): each part is one cell's Config values and seed, or a call of a function inside
the analyzer's package (``call`` = "package.module:function") with plain-JSON arguments, optionally on its own
data id (``data``: a chunk of a data set).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field

from workbench.core.analyzer import get_analyzer
from workbench.core.config import from_dict, parse_set_args, to_dict
from workbench.core.errors import ConfigError
from workbench.runtime.runner import library_versions  # the same versions as a run's provenance

#: torch threads per cell, the same in every backend: with fine-tuning, lrp_pruning's pruned weights
#: differ in the last bits between 1 and 2 threads (measured on digits_vgg.sk), so a fixed count is what
#: makes sequential, local and Ray cells bit-identical. It enters the cell key.
DEFAULT_THREADS = 1
MAX_CELLS = 100_000  # a typo such as --seeds 0-99999 x a big grid is refused, not queued
KEY_FORMAT = 1


@dataclass
class SweepSpec:
    """What to sweep: ``grid`` = Config field -> values (typed), ``fixed`` = other Config values (strings
    allowed), ``models`` = zoo or session card ids ("" for analyzers that build their own network),
    ``data`` = data ids (None: the card's default), ``seeds``. ``metric``: the metric the figures show
    ("" = chosen automatically). ``device``: auto | cpu | cuda; ``threads``: torch threads per cell."""

    analyzer: str
    models: list[str] = field(default_factory=lambda: [""])
    data: list[str | None] = field(default_factory=lambda: [None])
    grid: dict[str, list] = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    metric: str = ""
    device: str = "cpu"
    threads: int = DEFAULT_THREADS
    batch_size: int = 32
    #: explicit cells instead of grid x seeds: [{"params": {...}, "seed": int, "call": "", "data": None}] (see the
    #: module doc; ``data`` overrides the data id: a chunk of a data set)
    parts: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Cell:
    """One run of the grid. ``params``: this cell's grid values (grid key order); ``config``: the full
    validated config; ``key``: the content hash (filled by :func:`expand`)."""

    model: str
    data: str | None
    params: dict
    config: dict
    seed: int
    key: str = ""
    call: str = ""  # "" = a run of the analyzer; else the function inside its package the cell calls

    def label(self, with_seed: bool = True) -> str:
        parts = [f"{k}={v}" for k, v in self.params.items()]
        return " ".join(parts + ([f"seed={self.seed}"] if with_seed else []))

    def payload(self, spec: SweepSpec) -> dict:
        """What a worker needs to run the cell (plain data: it crosses process boundaries)."""
        return {"key": self.key, "analyzer": spec.analyzer, "model": self.model, "data": self.data,
                "config": self.config, "seed": self.seed, "device": spec.device, "threads": spec.threads,
                "batch_size": spec.batch_size, "call": self.call}


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2"`` -> [0, 2]; ``"0-2,7"`` -> [0, 1, 2, 7] (order kept, no repeats)."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            a, sep, b = part.strip().partition("-")
            lo, hi = int(a), int(b) if sep else int(a)
            if lo < 0 or hi < lo:
                raise ValueError
            out += [s for s in range(lo, hi + 1) if s not in out]
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is not a list of seeds", "write e.g. 0-4 or 0,2 (non-negative, "
                                                                      "ranges low-high)") from None
    return out


def _typed(cls, key: str, raw, fixed: dict):
    """``raw`` parsed and validated as ``key`` of ``cls.Config`` (with ``fixed`` set), returned typed."""
    cfg = from_dict(cls.Config, {**fixed, key: raw})
    return getattr(cfg, key)


def parse_grid(analyzer: str, items: list[str], fixed: dict | None = None) -> dict[str, list]:
    """``["rates=10,30", "criteria=lrp,weight"]`` -> {"rates": ["10", "30"], "criteria": ["lrp", "weight"]},
    each value parsed by its Config field's type and checked against its bounds and choices.
    ConfigError (one line) on an unknown key, a malformed item or a bad value."""
    cls = get_analyzer(analyzer)
    grid: dict[str, list] = {}
    for item in items or []:
        key, sep, values = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {item!r} is not key=v1,v2", "write --grid key=v1,v2")
        grid[key] = [v.strip() for v in values.split(",") if v.strip()]
    return check_grid(cls, grid, fixed or {})


def check_grid(cls, grid: dict, fixed: dict) -> dict[str, list]:
    """The grid with every value typed and validated (see :func:`parse_grid`); also for Python callers."""
    known = {f.name for f in dataclasses.fields(cls.Config)}
    out: dict[str, list] = {}
    for key, values in grid.items():
        if key not in known:
            raise ConfigError(f"unknown config key {key!r} in the grid of {cls.name}",
                              f"known keys: {', '.join(sorted(known))}")
        if key in fixed:
            raise ConfigError(f"{key!r} is both fixed and swept", "give it in the grid or as a fixed value")
        vals = [values] if isinstance(values, (str, bytes)) else list(values)
        if not vals:
            raise ConfigError(f"the grid gives no values for {key!r}", f"write {key}=v1,v2")
        typed = [_typed(cls, key, v, fixed) for v in vals]
        out[key] = list(dict.fromkeys(typed))  # repeats would be the same cell twice
    return out


def parse_fixed(items: list[str]) -> dict:
    return parse_set_args(items)


def code_hash(cls) -> str:
    """sha256 (16 hex digits) over the source files of the package that defines ``cls`` (its module alone
    when it is not in a package); "" when the source is not on disk."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    from pathlib import Path

    here = Path(path)
    files = sorted(here.parent.rglob("*.py")) if (here.parent / "__init__.py").is_file() else [here]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(here.parent).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _canonical(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def cell_key(analyzer: str, cell: Cell, weights: str, versions: dict, device: str, threads: int) -> str:
    """The content hash of a cell (sha256 hex, first 32 digits: 128 bits)."""
    doc = {"format": KEY_FORMAT, "analyzer": analyzer, "model": cell.model, "weights_sha256": weights,
           "data": cell.data or "", "config": cell.config, "seed": int(cell.seed), "versions": versions,
           "device": device, "threads": int(threads)}
    if cell.call:  # only call cells carry the name: the keys of analyzer cells stay what they were
        doc["call"] = cell.call
    return hashlib.sha256(_canonical(doc)).hexdigest()[:32]


def expand(spec: SweepSpec, weights: dict[str, str], data_for: dict[str, str | None], device: str) -> list[Cell]:
    """Every cell of ``spec`` (models x data x grid product x seeds, seeds innermost), validated and keyed.
    ``weights``: model id -> weights sha256; ``data_for``: model id -> the card's default data id (used
    when ``spec.data`` gives None); ``device``: the device kind the cells run on (cpu | cuda)."""
    cls = get_analyzer(spec.analyzer)
    fixed = dict(spec.fixed)
    if spec.parts:
        return _expand_parts(spec, cls, weights, data_for, device)
    grid = check_grid(cls, spec.grid, fixed)
    n = len(spec.models) * len(spec.data) * len(spec.seeds) * _product(len(v) for v in grid.values())
    if n == 0:
        raise ConfigError("the sweep has no cells", "give at least one model, seed and value per grid key")
    if n > MAX_CELLS:
        raise ConfigError(f"the sweep has {n} cells, more than {MAX_CELLS}", "narrow the grid or the seeds")
    versions = {**library_versions(cls.libraries), "analyzer_code": code_hash(cls)}
    cells = []
    for model, data in itertools.product(spec.models, spec.data):
        data_id = (data or data_for.get(model)) if cls.needs_data else data
        for combo in itertools.product(*grid.values()):
            params = dict(zip(grid, combo, strict=True))
            config = to_dict(from_dict(cls.Config, {**fixed, **params}))
            for seed in spec.seeds:
                cell = Cell(model, data_id, params, config, int(seed))
                cell.key = cell_key(cls.name, cell, weights.get(model, ""), versions, device, spec.threads)
                cells.append(cell)
    return cells


def check_call(cls, call: str) -> str:
    """``call`` if it names a function inside the package of ``cls`` ("package.module:function"); a spec can
    never make a worker import code from elsewhere."""
    package = cls.__module__.rsplit(".", 1)[0] if "." in cls.__module__ else cls.__module__
    module, sep, fn = str(call).partition(":")
    if not sep or not fn.isidentifier() or not (module == package or module.startswith(package + ".")):
        raise ConfigError(f"cell call {call!r} is not a function of {package}", "a split names its own functions")
    return call


def _expand_parts(spec: SweepSpec, cls, weights: dict, data_for: dict, device: str) -> list[Cell]:
    """The cells a spec lists (``parts``), for every model and data id, in order, validated and keyed."""
    if spec.grid:
        raise ConfigError("a sweep has either a grid or a list of cells", "drop the grid")
    if len(spec.parts) * len(spec.models) * len(spec.data) > MAX_CELLS:
        raise ConfigError(f"the sweep has more than {MAX_CELLS} cells", "split into fewer cells")
    versions = {**library_versions(cls.libraries), "analyzer_code": code_hash(cls)}
    cells = []
    for model, data in itertools.product(spec.models, spec.data):
        whole = (data or data_for.get(model)) if cls.needs_data else data
        for part in spec.parts:
            call, params = str(part.get("call") or ""), dict(part.get("params") or {})
            data_id = part.get("data") or whole  # a chunk of a data set names its own samples
            if call:  # plain-JSON arguments of the analyzer's own function, exactly as given
                config = json.loads(_canonical(params))
                cell = Cell(model, data_id, params, config, int(part["seed"]), call=check_call(cls, call))
            else:
                config = to_dict(from_dict(cls.Config, {**spec.fixed, **params}))
                cell = Cell(model, data_id, params, config, int(part["seed"]))
            cell.key = cell_key(cls.name, cell, weights.get(model, ""), versions, device, spec.threads)
            cells.append(cell)
    return cells


def _product(sizes) -> int:
    out = 1
    for s in sizes:
        out *= s
    return out
