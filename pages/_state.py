"""Form state that survives navigation, named presets, estimates and "what settings made this result".

Streamlit forgets a widget's value once a script run does not draw it (leaving a page and coming back
resets the form while the old result stays). Every form widget therefore goes through :func:`widget`:
it starts from a copy kept under ``keep.<key>`` (a plain session key, never cleaned up), written back
after each draw, so a form shows what the user last chose."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import streamlit as st

KEEP = "keep."


def remember(key: str, default, valid: Callable[[object], bool] | None = None):
    """The value a widget should start from when Streamlit holds none for ``key``: the kept copy, else
    ``default``; a value ``valid`` refuses (e.g. a model no longer offered) falls back to ``default``.
    A live value that ``valid`` refuses is dropped, so the widget starts again from there."""
    ss = st.session_state
    if key in ss and valid is not None and not valid(ss[key]):
        del ss[key]
    start = ss.get(KEEP + key, default)
    return default if valid is not None and not valid(start) else start


#: the argument that sets a widget's first value, by widget (the rest take ``value``)
_START_ARG = {"selectbox": "index", "radio": "index", "multiselect": "default"}


def widget(fn: Callable, label: str, key: str, default, *args, valid: Callable | None = None, **kw):
    """``fn(label, *args, key=key, **kw)`` with its value remembered across pages (see the module doc).

    While Streamlit holds the widget's state (or a callback set it: a preset, a fix) that value is used;
    otherwise the widget is created with the remembered value as its ordinary first value (index, default
    or value), the way Streamlit documents, never by writing its state before it exists."""
    if key not in st.session_state or (valid is not None and not valid(st.session_state[key])):
        start = remember(key, default, valid)
        arg = _START_ARG.get(getattr(fn, "__name__", ""), "value")
        kw[arg] = list(args[0]).index(start) if arg == "index" else start
    value = fn(label, *args, key=key, **kw)
    st.session_state[KEEP + key] = value
    return value


def set_value(key: str, value) -> None:
    """Set a form value from a callback (a preset, a fix): the widget and its kept copy both."""
    st.session_state[key] = value
    st.session_state[KEEP + key] = value


def _as_widget_value(f: dataclasses.Field, value):
    return [c for c in str(value).split(",") if c] if f.metadata.get("multi") else value


def apply_config(config_cls: type, key: str, overrides: dict) -> None:
    """Put config values into the page's form (keys ``<key>.<field>``, the layout :func:`config_form` uses)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for name, value in overrides.items():
        if name in fields:
            set_value(f"{key}.{name}", _as_widget_value(fields[name], value))


def preset_bar(analyzer, key: str) -> str | None:
    """One button per preset the analyzer declares (``Analyzer.presets``) and one back to the quick
    defaults; returns the name of the preset whose values the form now holds (None: other values)."""
    presets = getattr(analyzer, "presets", {}) or {}
    if not presets:
        return None
    defaults = {f.name: f.default for f in dataclasses.fields(analyzer.Config)}
    cols = st.columns(len(presets) + 1)
    cols[0].button("Quick defaults (~1 min on a CPU)", key=f"{key}.preset.defaults", icon=":material/bolt:",
                   on_click=apply_config, args=(analyzer.Config, key, defaults),
                   help="the defaults: a run of about a minute on 2 CPU cores")
    for col, (name, p) in zip(cols[1:], presets.items(), strict=True):
        col.button(f"Preset: {name}", key=f"{key}.preset.{name}", icon=":material/tune:", help=p.get("about", ""),
                   on_click=apply_config, args=(analyzer.Config, key, p.get("config", {})))
    ss = st.session_state
    for name, p in presets.items():
        conf = p.get("config", {})
        if conf and all(ss.get(f"{key}.{n}") == _as_widget_value(_field(analyzer, n), v) for n, v in conf.items()):
            return name
    return None


def _field(analyzer, name: str) -> dataclasses.Field:
    return analyzer.Config.__dataclass_fields__[name]


def estimate_line(analyzer, values: dict, last) -> str:
    """An estimate before a run: the last finished run of this page is the calibration (its duration per unit
    of work, ``analyzer.work_units(config)``: epochs, grid cells...), scaled to the chosen settings."""
    units = getattr(analyzer, "work_units", None)
    if units is None or last is None or not last.provenance.duration_s:
        return ""
    try:
        before, now = float(units(last.config)), float(units({**last.config, **values}))
    except (TypeError, ValueError, KeyError):
        return ""
    if before <= 0:
        return ""
    secs = last.provenance.duration_s * now / before
    return (f"Estimate: about {_duration(secs)} on this machine ({_duration(last.provenance.duration_s)} for "
            f"the last run, scaled by its amount of work: {now:g} against {before:g}).")


def _duration(secs: float) -> str:
    return f"{secs:.0f} s" if secs < 90 else f"{secs / 60:.0f} min"


def settings_line(result, analyzer=None) -> str:
    """The settings a result came from, in one line: model, data and every value that differs from the
    defaults (so a form changed since the run cannot be mistaken for the result's settings)."""
    cls = analyzer.Config if analyzer is not None else None
    defaults = {f.name: f.default for f in dataclasses.fields(cls)} if cls is not None else {}
    changed = [f"{k}={v}" for k, v in (result.config or {}).items() if k in defaults and defaults[k] != v]
    parts = [f"model {result.model}" if result.model else "", f"data {result.data}" if result.data else "",
             ("settings: " + ", ".join(changed)) if changed else "settings: the defaults"]
    return "From: " + " · ".join(p for p in parts if p)
