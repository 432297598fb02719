"""Result contract: metrics, checks, named arrays, provenance; renders itself.

A Result stores only plain numbers, strings and numpy arrays, so it round-trips
exactly through ``result.json`` + ``arrays.npz`` (no pickle). Subclasses (one per
analyzer) override :meth:`Result.figures` to build Plotly figures from the stored
arrays alone: no torch, no recomputation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from workbench.core import plugins
from workbench.core.errors import DataError

FORMAT_VERSION = 1


@dataclasses.dataclass
class Check:
    """A pass/fail statement with the measured value and the threshold it was held to."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str
    #: what to do when it fails, in the user's words (e.g. "raise n_steps to 256"); optional
    next_step: str = ""
    #: config overrides that apply ``next_step`` (a page offers them as a "rerun with the fix" button)
    fix: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"name": self.name, "passed": bool(self.passed),
               "value": _num(self.value), "threshold": _num(self.threshold),
               "message": self.message}
        return out | ({"next_step": self.next_step} if self.next_step else {}) | ({"fix": self.fix} if self.fix else {})


@dataclasses.dataclass
class Provenance:
    """Where a result came from: enough to reproduce it. ``dtype``: the precision the analyzer computed in,
    as it states in ``result.info["dtype"]`` (e.g. "float64"), else the run's dtype."""

    model_id: str = ""
    weights_sha256: str = ""
    data_id: str = ""
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    versions: dict = dataclasses.field(default_factory=dict)
    duration_s: float = 0.0
    created: str = ""


@dataclasses.dataclass(frozen=True)
class ModelArtifact:
    """A model a result carries, ready to become a zoo card (``workbench zoo add-artifact DIR``).

    ``state_dict``: parameter/buffer name -> numpy array for the architecture of the zoo card
    ``base_model``; layer widths may be smaller than the base's (structural pruning), the loader
    rebuilds the architecture at the stored sizes. ``label``: a short default name for the new card.
    """

    base_model: str
    state_dict: dict
    label: str


def _num(v: Any) -> Any:
    """JSON-safe number: NaN/inf become strings so they are visible, not silently null."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    v = float(v)
    if math.isfinite(v):
        return v
    return str(v)


def _result_class(analyzer: str) -> type:
    """The Result subclass the analyzer declared, found through the registry: its entry point is
    imported first, so a fresh process loads results without importing the analyzer by hand. An
    analyzer nobody declares (uninstalled plug-in) falls back to the base class: metrics and checks
    still read, figures are empty."""
    if analyzer not in Result.classes:  # the result module alone (no torch), if the package declares it
        plugins.load(RESULTS_GROUP, analyzer)
    if analyzer not in Result.classes:
        plugins.load("workbench.analyzers", analyzer)
    return Result.classes.get(analyzer, Result)


#: entry points ``name = "package.module:ResultSubclass"`` (name = the analyzer's name)
RESULTS_GROUP = "workbench.results"


def _register_result(name: str, obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Result)):
        raise TypeError(f"entry point {name!r} in {RESULTS_GROUP} must name a Result subclass, got {obj!r}")
    Result.classes.setdefault(name, obj)


def _unnum(v: Any) -> Any:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    return v


class Result:
    """Base result. Subclasses set ``figures`` (and optionally ``summary``)."""

    #: registered result classes by analyzer name, filled by the analyzer registry
    classes: ClassVar[dict[str, type]] = {}
    #: shapes of stored arrays checked on load: name -> (int size | None any | "H" same size by name)
    array_shapes: ClassVar[dict[str, tuple]] = {}

    def __init__(self, analyzer: str, model: str = "", data: str = "",
                 config: dict | None = None, metrics: dict | None = None,
                 checks: list[Check] | None = None, arrays: dict | None = None,
                 info: dict | None = None, provenance: Provenance | None = None) -> None:
        self.analyzer = analyzer
        self.model = model
        self.data = data
        self.config = dict(config or {})
        self.metrics: dict[str, float] = {k: float(v) for k, v in (metrics or {}).items()}
        self.checks: list[Check] = list(checks or [])
        self.info: dict = dict(info or {})
        self.provenance = provenance or Provenance()
        self.arrays: dict[str, np.ndarray] = {}
        for k, v in (arrays or {}).items():
            self.set_array(k, v)

    # -- content -----------------------------------------------------------------
    def set_array(self, name: str, value: Any) -> None:
        arr = np.array(value, copy=True)
        if arr.dtype == object:
            raise DataError(f"array {name!r} has object dtype", "store numbers only")
        arr.flags.writeable = False
        self.arrays[name] = arr

    def nonfinite_count(self) -> int:
        return int(sum(int((~np.isfinite(a)).sum()) for a in self.arrays.values()
                       if np.issubdtype(a.dtype, np.floating)))

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def title(self) -> str:
        """"analyzer · model · data", leaving out a part the run has not (e.g. no data id: no dangling "·")."""
        return " · ".join(str(p) for p in (self.analyzer, self.model, self.data) if p)

    def figures(self) -> list:
        """Plotly figures built from stored arrays only. Subclasses override."""
        return []

    def summary(self) -> str:
        """One paragraph of plain text for reports. Subclasses may override."""
        return ""

    def _repr_html_(self) -> str:
        """Jupyter: title, checks (pass/FAIL), metrics, provenance and the Plotly figures, offline
        (workbench.core.notebook; every user string escaped)."""
        from workbench.core.notebook import result_html

        return result_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        from workbench.core.notebook import result_text

        return {"text/html": self._repr_html_(), "text/plain": result_text(self)}

    def model_artifact(self) -> ModelArtifact | None:
        """The model this result carries (e.g. a pruned network), or None. Analyzers whose result
        holds one override this; the CLI and the app save it as a zoo card without knowing the analyzer."""
        return None

    # -- persistence ---------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "analyzer": self.analyzer,
            "model": self.model,
            "data": self.data,
            "config": self.config,
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "checks": [c.to_dict() for c in self.checks],
            "info": self.info,
            "provenance": dataclasses.asdict(self.provenance),
            "arrays": sorted(self.arrays),
        }

    def save(self, directory: str | Path, force: bool = False, extras: dict[str, bytes] | None = None) -> Path:
        """Write ``result.json`` + ``arrays.npz`` (+ ``extras``, name -> bytes, e.g. report.html) as one
        atomic, locked folder (workbench/core/result_folder.py). An existing result is replaced only with
        ``force``, and then only once the new one is complete; OutputError otherwise."""
        from workbench.core.result_folder import ResultFolder

        with ResultFolder(directory, force) as folder:
            return folder.commit(*self.folder_files(extras))

    def folder_files(self, extras: dict[str, bytes] | None = None) -> tuple[dict, Any]:
        """(name -> writer(file), index(sizes) -> result.json bytes) for :meth:`ResultFolder.commit`:
        result.json, written last, lists the other files with their sizes (the completeness marker)."""
        files = {"arrays.npz": lambda f: np.savez_compressed(f, **self.arrays)}
        files.update({name: (lambda f, b=data: f.write(b)) for name, data in (extras or {}).items()})
        return files, lambda sizes: json.dumps({**self.to_json(), "files": sizes}, indent=2).encode()

    @classmethod
    def from_json(cls, doc: dict, arrays: dict | None = None) -> Result:
        klass = _result_class(doc.get("analyzer", ""))
        res = klass.__new__(klass)
        Result.__init__(
            res, analyzer=doc["analyzer"], model=doc.get("model", ""), data=doc.get("data", ""),
            config=doc.get("config", {}),
            metrics={k: _unnum(v) for k, v in doc.get("metrics", {}).items()},
            checks=[Check(c["name"], bool(c["passed"]), _unnum(c["value"]),
                          _unnum(c["threshold"]), c["message"], str(c.get("next_step", "")),
                          c["fix"] if isinstance(c.get("fix"), dict) else {}) for c in doc.get("checks", [])],
            arrays=arrays or {}, info=doc.get("info", {}),
            provenance=Provenance(**doc.get("provenance", {})))
        return res

    @classmethod
    def load(cls, directory: str | Path) -> Result:
        """Read a result folder as untrusted input: both files bounded and never through a symbolic
        link (:mod:`workbench.io.safe`), the json checked against :mod:`workbench.core.result_schema`, the
        arrays decoded by :func:`workbench.io.arrays.load_result_arrays` (sizes checked before inflating)."""
        import os

        from workbench.core import result_schema as rs
        from workbench.io import limits
        from workbench.io.arrays import load_result_arrays
        from workbench.io.safe import read_file

        d = Path(directory).expanduser()
        if not str(directory).strip() or not d.is_dir():
            why = ("no result folder named" if not str(directory).strip() else f"{directory!s:.200} is not a "
                   "result folder" if os.path.lexists(d) else f"no result.json in {directory!s:.200} (no such folder)")
            raise DataError(why, "point at a folder written by `workbench run`")
        where = str(d / "result.json")
        if not os.path.lexists(d / "result.json"):
            raise DataError(f"no result.json in {d}", "point at a folder written by `workbench run`")
        raw = read_file(d / "result.json", limits.MAX_RESULT_JSON_BYTES, what="result file", nofollow=True,
                        hint="re-run the analysis")
        try:
            doc = json.loads(raw)
        except RecursionError:
            raise rs.ResultSchemaError(f"{where} nests too deeply", "re-run the analysis") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            why = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
            raise DataError(f"{where} is not valid JSON ({why})", "re-run the analysis") from None
        names = rs.validate_doc(doc, where, dataclasses.fields(Provenance))
        npz = d / "arrays.npz"
        arrays = load_result_arrays(npz) if names or os.path.lexists(npz) else {}
        klass = _result_class(doc["analyzer"])
        rs.validate_arrays(names, arrays, getattr(klass, "array_shapes", {}), str(npz))
        return cls.from_json(doc, arrays)


plugins.on_load(RESULTS_GROUP, _register_result)
