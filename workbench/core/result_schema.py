"""The schema of a saved result (``result.json`` + ``arrays.npz``), checked on load.

A result folder is user input once it leaves the process that wrote it (copied, shared, hand-edited,
half-written): every field :meth:`Result.from_json` and the report rely on is type-checked here, and
each violation is one :class:`ResultSchemaError` line naming the field, never a traceback later.

Written by hand rather than with a JSON-Schema library: the checks that matter cross the two files
(names listed in ``result.json`` against the members of ``arrays.npz``, shapes a Result subclass
declares in ``array_shapes``), and the error must name the one field in one line.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from workbench.core.errors import DataError

FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_SPECIAL = ("nan", "inf", "-inf")  # how Result.save writes non-finite numbers
_CHECK_FIELDS = {"name": str, "passed": bool, "value": "number?", "threshold": "number?", "message": str}
_HINT = "re-run the analysis that wrote it (`workbench run ... --out DIR`)"


class ResultSchemaError(DataError):
    code = "bad_result"


def _fail(where: str, what: str) -> ResultSchemaError:
    return ResultSchemaError(f"{where}: {what}"[:300], _HINT)


def _short(v: Any) -> str:
    return repr(v)[:40]


def is_number(v: Any, optional: bool = False) -> bool:
    """A JSON number (bool counts: a 0/1 metric), or one of the strings save() writes for NaN/inf."""
    if v is None:
        return optional
    if isinstance(v, int) and not isinstance(v, bool):
        return abs(v) < 2**1023  # float(v) must not overflow (JSON integers are unbounded)
    return isinstance(v, (bool, float)) or (isinstance(v, str) and v in _SPECIAL)


def _metrics(doc: dict, where: str) -> None:
    metrics = doc.get("metrics", {})
    if not isinstance(metrics, dict):
        raise _fail(where, f"metrics is a {type(metrics).__name__}, not a table of numbers")
    for k, v in metrics.items():
        if not is_number(v):
            raise _fail(where, f"metric {k[:60]!r} is {_short(v)}, not a number")


def _checks(doc: dict, where: str) -> None:
    checks = doc.get("checks", [])
    if not isinstance(checks, list):
        raise _fail(where, f"checks is a {type(checks).__name__}, not a list")
    for i, c in enumerate(checks):
        if not isinstance(c, dict):
            raise _fail(where, f"check {i} is a {type(c).__name__}, not a table")
        for field, kind in _CHECK_FIELDS.items():
            if field not in c:
                raise _fail(where, f"check {i} lacks the field {field!r}")
            v = c[field]
            ok = is_number(v, optional=True) if kind == "number?" else isinstance(v, kind)
            if not ok:
                raise _fail(where, f"check {i} field {field!r} is {_short(v)}, "
                                   f"not {'a number or null' if kind == 'number?' else kind.__name__}")


def _provenance(doc: dict, fields: tuple[dataclasses.Field, ...], where: str) -> None:
    prov = doc.get("provenance", {})
    if not isinstance(prov, dict):
        raise _fail(where, f"provenance is a {type(prov).__name__}, not a table")
    types = {f.name: f.type for f in fields}
    for k, v in prov.items():
        if k not in types:
            raise _fail(where, f"provenance has the unknown field {k[:40]!r}")
        t = str(types[k])
        ok = {"str": isinstance(v, str), "int": isinstance(v, int) and not isinstance(v, bool),
              "float": isinstance(v, (int, float)) and not isinstance(v, bool),
              "dict": isinstance(v, dict)}.get(t, True)
        if not ok:
            raise _fail(where, f"provenance field {k!r} is {_short(v)}, not {t}")


def validate_doc(doc: Any, where: str, provenance_fields: tuple) -> list[str]:
    """Check a parsed ``result.json``; return the array names it lists."""
    if not isinstance(doc, dict):
        raise _fail(where, f"holds a {type(doc).__name__}, not a table")
    fmt = doc.get("format", FORMAT_VERSION)
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise _fail(where, f"format is {_short(fmt)}, not a version number")
    if fmt > FORMAT_VERSION:
        raise ResultSchemaError(f"{where} was written in result format {fmt}; this workbench reads up to "
                                f"{FORMAT_VERSION}", "update the workbench")
    name = doc.get("analyzer")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, f"analyzer is {_short(name)}, not an analyzer name")
    for key in ("model", "data"):
        if not isinstance(doc.get(key, ""), str):
            raise _fail(where, f"{key} is {_short(doc[key])}, not text")
    for key in ("config", "info"):
        if not isinstance(doc.get(key, {}), dict):
            raise _fail(where, f"{key} is a {type(doc[key]).__name__}, not a table")
    _metrics(doc, where)
    _checks(doc, where)
    _provenance(doc, provenance_fields, where)
    names = doc.get("arrays", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(where, "arrays is not a list of names")
    return names


def _dims(shape: tuple[int, ...], spec: tuple, name: str, bound: dict, where: str) -> None:
    if len(shape) != len(spec):
        raise _fail(where, f"array {name!r} is {shape}, the analyzer declares {len(spec)} dimensions {spec}")
    for got, want in zip(shape, spec, strict=True):
        if isinstance(want, str):  # a named size: equal wherever the same name appears
            want = bound.setdefault(want, got)
        if want is not None and got != want:
            raise _fail(where, f"array {name!r} is {shape}, the analyzer declares {spec}")


def validate_arrays(names: list[str], arrays: dict[str, np.ndarray], declared: dict, where: str) -> None:
    """Arrays listed in ``result.json`` exist (and no others), hold no objects, and match the shapes the
    Result subclass declares: ``array_shapes = {"name": (None, "H", "W")}`` (int: that size, None: any,
    str: the same size wherever that name appears)."""
    missing = sorted(set(names) - set(arrays))
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"holds {extra[0]!r}, which result.json does not list"
        raise _fail(where, f"arrays.npz {what} ({len(missing)} missing, {len(extra)} unlisted)")
    for k, a in arrays.items():
        if a.dtype.hasobject or a.dtype.fields is not None:
            raise _fail(where, f"array {k!r} holds {a.dtype} values")
    bound: dict = {}
    for k, spec in declared.items():
        if k in arrays:
            _dims(arrays[k].shape, tuple(spec), k, bound, where)
