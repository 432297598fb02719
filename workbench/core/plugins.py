"""The one loader of plug-ins: imports the entry points that packages declare for the workbench.

Groups: ``workbench.models`` (modules that register zoo cards on import), ``workbench.analyzers``
(``name = "package.module:Class"``) and ``workbench.datasets``. This module sits below the registries
(analyzer, cards, result) and imports none of them: a registry that wants to vet what an entry point
names hands a check to :func:`on_load`, so loading never needs a function-level import back up.

An object loaded before its group's check exists (e.g. ``Result.load`` in a fresh process loads an
analyzer entry point, whose import then defines the analyzer registry) waits and is checked the moment
the check arrives, so the order of first use does not matter.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

GROUPS = ("workbench.models", "workbench.datasets", "workbench.analyzers")
#: "group:name" -> "ErrorType: message" for entry points that failed to import or were refused;
#: shown on the home page and by the CLI (one broken plug-in must not take down the rest)
ERRORS: dict[str, str] = {}
_checks: dict[str, Callable[[str, Any], None]] = {}
_waiting: dict[str, list[tuple[str, Any]]] = {}
_done: set[tuple[str, str]] = set()
_scanned: set[str] = set()  # groups whose every entry point has been imported (get_card asks often)


def on_load(group: str, check: Callable[[str, Any], None]) -> None:
    """Vet every object loaded from ``group`` with ``check(entry_point_name, obj)`` (raise to refuse:
    the error is recorded in :data:`ERRORS`); objects loaded earlier are checked now."""
    _checks[group] = check
    for name, obj in _waiting.pop(group, []):
        _vet(group, name, obj)


def load(group: str | None = None, name: str | None = None) -> None:
    """Import the entry points of ``group`` (every group when None), or only the one called ``name``;
    each entry point is imported at most once per process."""
    for g in GROUPS if group is None else (group,):
        if g in _scanned:
            continue
        if name is None:
            _scanned.add(g)
        for ep in entry_points(group=g):
            if (name is not None and ep.name != name) or (g, ep.name) in _done:
                continue
            _done.add((g, ep.name))
            try:
                obj = ep.load()
            except Exception as e:  # noqa: BLE001 - a plug-in can raise anything on import
                ERRORS[f"{g}:{ep.name}"] = f"{type(e).__name__}: {e}"
                continue
            if g in _checks:
                _vet(g, ep.name, obj)
            else:
                _waiting.setdefault(g, []).append((ep.name, obj))


def load_all() -> None:
    """Import every declared plug-in (models, data sets, analyzers)."""
    load()


def _vet(group: str, name: str, obj: Any) -> None:
    try:
        _checks[group](name, obj)
    except Exception as e:  # noqa: BLE001 - a refused plug-in is reported, not fatal
        ERRORS[f"{group}:{name}"] = f"{type(e).__name__}: {e}"
