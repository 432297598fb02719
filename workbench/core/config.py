"""Analyzer configuration helpers.

A Config is a frozen dataclass whose every field has a default and carries its help
text and bounds in field metadata (built with :func:`option`). These helpers validate a
config, build one from strings (the CLI's ``--set key=value``), and describe the fields
(for ``workbench analyzers --json`` and for generated widgets).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from workbench.core.errors import ConfigError


def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,
           choices: tuple | None = None, multi: bool = False, label: str = "") -> Any:
    """A config field with its default, help text, bounds and allowed choices.

    ``multi=True`` with ``choices`` means a comma-separated subset of the choices.
    """
    meta = {"help": help, "min": min, "max": max, "choices": choices, "multi": multi,
            "label": label}
    return dataclasses.field(default=default, metadata=meta)


def _field_type(cls: type, f: dataclasses.Field) -> type:
    hints = typing.get_type_hints(cls)
    return hints.get(f.name, type(f.default))


def describe(cls: type) -> list[dict]:
    """Every field as a JSON-ready dict: name, type, default, help, min, max, choices."""
    out = []
    for f in dataclasses.fields(cls):
        t = _field_type(cls, f)
        out.append({"name": f.name, "type": getattr(t, "__name__", str(t)), "default": f.default,
                    **{k: (list(v) if isinstance(v, tuple) else v) for k, v in f.metadata.items()}})
    return out


def _parse(value: Any, t: type, name: str) -> Any:
    if isinstance(value, t) and not (t is int and isinstance(value, bool)):
        return value
    if t is bool:
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean", "use true or false")
    try:
        if t is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if t is float:
            return float(value)
        if t is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a valid {t.__name__}",
                          f"give a {t.__name__} value") from None
    return value


def validate(cfg: Any) -> Any:
    """Check every field's type, bounds and choices; return cfg or raise ConfigError."""
    cls = type(cfg)
    for f in dataclasses.fields(cls):
        t = _field_type(cls, f)
        v = _parse(getattr(cfg, f.name), t, f.name)
        m = f.metadata
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if v != v or v in (float("inf"), float("-inf")):
                raise ConfigError(f"{f.name}={v} is not finite", "give a finite number")
            if m.get("min") is not None and v < m["min"]:
                raise ConfigError(f"{f.name}={v} is below the minimum {m['min']}",
                                  f"use a value in [{m['min']}, {m.get('max')}]")
            if m.get("max") is not None and v > m["max"]:
                raise ConfigError(f"{f.name}={v} is above the maximum {m['max']}",
                                  f"use a value in [{m.get('min')}, {m['max']}]")
        choices = m.get("choices")
        if choices:
            parts = [p.strip() for p in str(v).split(",")] if m.get("multi") else [v]
            bad = [p for p in parts if p not in choices]
            if bad or not parts or parts == [""]:
                raise ConfigError(f"{f.name}={v!r} is not one of {', '.join(map(str, choices))}",
                                  "pick from the listed choices")
        if v is not getattr(cfg, f.name):
            object.__setattr__(cfg, f.name, v)
    return cfg


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build and validate a Config from a mapping of field name -> value (strings allowed)."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}",
                          f"known keys: {', '.join(sorted(known))}")
    parsed = {k: _parse(v, _field_type(cls, known[k]), k) for k, v in values.items()}
    return validate(cls(**parsed))


def parse_set_args(items: list[str]) -> dict[str, str]:
    """Turn ``["a=1", "b=x"]`` into ``{"a": "1", "b": "x"}``; raise ConfigError on a malformed item."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not key=value", "write --set key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
