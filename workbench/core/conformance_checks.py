"""The individual checks of :mod:`workbench.core.conformance` that read a finished run: config round
trips, save/load, figures without torch (in a separate interpreter with torch blocked), provenance,
declared libraries and the headline check's randomization verdict. What watches a run while it goes
(model state, cancel and forward faults) is in :mod:`workbench.core.conformance_probes`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

from workbench.core.config import from_dict, to_dict, validate
from workbench.core.result import Check, Result

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
#: a headline check that still passes on the randomized copy must keep at most this share of its margin
MARGIN_KEPT = 0.5
#: distributions used for drawing only: their versions do not change a result's numbers
PRESENTATION = ("plotly",)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIGURES_TIMEOUT_S = 300


def describe_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:300]}"


def _few(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


# -- config ----------------------------------------------------------------------------------------

def _as_text(v: Any) -> str:
    """A value as a user types it after ``--set key=``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def config_from(config_cls: type, overrides: dict) -> Any:
    return from_dict(config_cls, overrides)


def config_problems(config_cls: type) -> list[str]:
    """What is wrong with the default Config: invalid, or changed by a dict, JSON or string round trip."""
    try:
        cfg = validate(config_cls())
    except Exception as e:  # noqa: BLE001 - reported
        return [f"the default Config is invalid ({describe_error(e)})"]
    d = to_dict(cfg)
    out = []
    for label, values in (("to_dict/from_dict", d), ("JSON", json.loads(json.dumps(d))),
                          ("string (--set)", {k: _as_text(v) for k, v in d.items()})):
        try:
            back = from_dict(config_cls, values)
        except Exception as e:  # noqa: BLE001 - reported
            out.append(f"the {label} round trip raised {describe_error(e)}")
            continue
        changed = [k for k in d if getattr(back, k) != getattr(cfg, k)]
        if changed:
            out.append(f"the {label} round trip changed {_few(changed)}")
    return out


# -- save / load and figures -----------------------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _check_tuple(c: Check) -> tuple:
    return c.name, bool(c.passed), c.value, c.threshold, c.message


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


def save_load_problems(a: Result, b: Result) -> list[str]:
    """Differences between a result and its saved-and-loaded copy."""
    out = []
    if type(b) is not type(a):
        out.append(f"loaded as {type(b).__qualname__}, saved as {type(a).__qualname__}")
    out += [f"{k} differs" for k in ("analyzer", "model", "data") if getattr(a, k) != getattr(b, k)]
    out += [f"{k} differs" for k in ("config", "info") if _canon(getattr(a, k)) != _canon(getattr(b, k))]
    bad = sorted(set(a.metrics) ^ set(b.metrics)) + [k for k in a.metrics if k in b.metrics
                                                     and not _same(a.metrics[k], b.metrics[k])]
    if bad:
        out.append(f"metrics differ: {_few(bad)}")
    ca, cb = [_check_tuple(c) for c in a.checks], [_check_tuple(c) for c in b.checks]
    if len(ca) != len(cb) or not all(all(map(_same, x, y)) for x, y in zip(ca, cb, strict=False)):
        out.append("checks differ")
    if _canon(dataclasses.asdict(a.provenance)) != _canon(dataclasses.asdict(b.provenance)):
        out.append("provenance differs")
    lost, extra = sorted(set(a.arrays) - set(b.arrays)), sorted(set(b.arrays) - set(a.arrays))
    if lost:
        out.append(f"array(s) lost: {_few(lost)}")
    if extra:
        out.append(f"array(s) appeared: {_few(extra)}")
    for k in sorted(set(a.arrays) & set(b.arrays)):
        x, y = a.arrays[k], b.arrays[k]
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            out.append(f"array {k!r} differs ({x.dtype}{x.shape} saved, {y.dtype}{y.shape} loaded)")
    return out


_FIGURES_SCRIPT = r"""
import importlib, importlib.util, json, sys, types
sys.modules["torch"] = None  # every later `import torch` raises ImportError
directory, module_name, qualname = sys.argv[1:4]
from workbench.core.result import Result
parts = module_name.split(".")
for i in range(1, len(parts)):  # parent packages without their __init__ (which may import the analyzer)
    name = ".".join(parts[:i])
    if name not in sys.modules:
        spec = importlib.util.find_spec(name)
        stub = types.ModuleType(name)
        stub.__path__ = list(spec.submodule_search_locations or [])
        sys.modules[name] = stub
klass = importlib.import_module(module_name)
for part in qualname.split("."):
    klass = getattr(klass, part)
doc = json.loads(open(directory + "/result.json").read())
Result.classes[doc["analyzer"]] = klass
res = Result.load(directory)
import plotly.graph_objects as go
figs = res.figures()
print(json.dumps({"class": type(res).__qualname__,
                  "figures": [[type(f).__name__, isinstance(f, go.Figure),
                               len(f.data) if isinstance(f, go.Figure) else 0] for f in figs]}))
"""


def figures_without_torch(directory: Path, result_class: type) -> tuple[bool, str]:
    """Load the saved result in a fresh interpreter with torch blocked and build its figures."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        proc = subprocess.run([sys.executable, "-c", _FIGURES_SCRIPT, str(directory), result_class.__module__,
                               result_class.__qualname__], capture_output=True, text=True, env=env,
                              timeout=_FIGURES_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"building the figures took more than {_FIGURES_TIMEOUT_S} s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return False, f"without torch: {last}"
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    figs = got["figures"]
    if got["class"] != result_class.__qualname__:
        return False, f"loaded as {got['class']}, not {result_class.__qualname__}"
    if not figs:
        return False, "figures() returned no figure"
    bad = [f"#{i} {kind}" + ("" if is_fig else " (not a plotly Figure)") for i, (kind, is_fig, n) in enumerate(figs)
           if not is_fig or n == 0]
    if bad:
        return False, f"figures without data: {_few(bad)}"
    return True, f"{len(figs)} plotly figure(s) with data, built without torch"


# -- provenance and libraries ----------------------------------------------------------------------

def provenance_problems(result: Result, cls: type, config: Any, harness: Any, handle: Any, batch: Any,
                        seed: int) -> list[str]:
    p, out = result.provenance, []
    if handle is not None:
        if p.model_id != handle.card.id:
            out.append(f"model_id is {p.model_id!r}, not {handle.card.id!r}")
        if not _SHA256.fullmatch(p.weights_sha256 or ""):
            out.append(f"weights_sha256 {p.weights_sha256!r} is not a sha256 digest")
    if batch is not None and p.data_id != batch.data_id:
        out.append(f"data_id is {p.data_id!r}, not {batch.data_id!r}")
    if p.seed != seed:
        out.append(f"seed is {p.seed}, not {seed}")
    if p.device != harness.device:
        out.append(f"device is {p.device!r}, not {harness.device!r}")
    wanted = getattr(config, "dtype", None) if "dtype" in {f.name for f in dataclasses.fields(config)} else None
    if p.dtype not in FLOAT_DTYPES:
        out.append(f"dtype {p.dtype!r} is not one of {', '.join(FLOAT_DTYPES)}")
    elif wanted in FLOAT_DTYPES and p.dtype != wanted:
        out.append(f"dtype says {p.dtype} but the run computed in {wanted} (config.dtype)")
    missing = [n for n in ("python", "torch", "numpy", *cls.libraries) if not p.versions.get(n)]
    if missing:
        out.append(f"versions lack {', '.join(missing)}")
    if not p.created:
        out.append("created is empty")
    return out


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@functools.cache
def _distributions() -> dict[str, tuple[str, ...]]:
    return {k: tuple(_norm(d) for d in v) for k, v in packages_distributions().items()}


def _source_imports(path: str) -> set[str]:
    """Absolute module names imported anywhere in a source file, function-level imports included
    (``from a.b import c`` gives ``a.b`` and ``a.b.c``: c may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _origin(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _imported_roots(cls: type) -> set[str]:
    """Top-level names of everything the analyzer's module imports, following the modules of its own
    top-level package (e.g. ``analyzers._shared``) through their source."""
    first = cls.__module__.split(".")[0]
    queue, seen, found = [cls.__module__], set(), set()
    while queue:
        name = queue.pop()
        path = _origin(name) if name not in seen else None
        seen.add(name)
        if path is None:
            continue
        for imported in _source_imports(path):
            root = imported.split(".")[0]
            if root != first:
                found.add(root)
            elif imported not in seen:
                queue.append(imported)
    return found


def undeclared_libraries(cls: type, always: tuple[str, ...]) -> list[str]:
    """Distributions the analyzer imports whose versions provenance would not carry."""
    known = {_norm(d) for d in (*always, *cls.libraries, *PRESENTATION)}
    known |= set(_distributions().get(cls.__module__.split(".")[0], ()))
    missing = set()
    for root in _imported_roots(cls) - set(sys.stdlib_module_names):
        dists = _distributions().get(root, ())
        if dists and not known & set(dists):
            missing.add(dists[0])
    return sorted(missing)


# -- headline check --------------------------------------------------------------------------------

def _vt(c: Check) -> str:
    return f"value {c.value:.4g} vs threshold {c.threshold:.4g}" if isinstance(c.value, (int, float)) and \
        isinstance(c.threshold, (int, float)) else f"value {c.value} vs threshold {c.threshold}"


def _margin_kept(t: Check, r: Check) -> float | None:
    """Share of the trained model's distance to the threshold that the randomized model keeps."""
    vals = (t.value, t.threshold, r.value, r.threshold)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals) or t.value == t.threshold:
        return None
    side = 1.0 if t.value > t.threshold else -1.0
    return side * (r.value - r.threshold) / abs(t.value - t.threshold)


def headline_verdict(name: str, trained: Result, randomized: Any) -> tuple[bool, str]:
    """Does check ``name`` pass on ``trained`` and break on ``randomized()`` (a Result factory)?"""
    find = lambda res: next((c for c in res.checks if c.name == name), None)  # noqa: E731
    t = find(trained)
    if t is None:
        return False, f"headline check {name!r} is not among the checks ({_few([c.name for c in trained.checks])})"
    if not t.passed:
        return False, f"{name!r} fails on the trained model ({_vt(t)}): the control needs a model that passes it"
    try:
        r = find(randomized())
    except Exception as e:  # noqa: BLE001 - reported
        return False, f"the run on the weight-randomized copy raised {describe_error(e)}"
    if r is None:
        return True, f"{name!r} passes on the trained model ({_vt(t)}) and is not produced once the weights are random"
    if not r.passed:
        return True, f"{name!r} passes on the trained model ({_vt(t)}) and fails on the randomized copy ({_vt(r)})"
    kept = _margin_kept(t, r)
    if kept is not None and kept <= MARGIN_KEPT:
        return True, (f"{name!r} still passes on the randomized copy but keeps only {kept:.0%} of its margin "
                      f"({_vt(t)} -> {_vt(r)})")
    return False, (f"{name!r} survives randomization ({_vt(t)} -> {_vt(r)}): its verdict does not depend on "
                   "what the model learned")
