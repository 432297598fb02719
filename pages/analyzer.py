"""The generic analyzer page: one page per registered analyzer, built from what it declares.

Which analyzer: workbench/app.py registers this file once per analyzer under the URL path
``/<analyzer name>`` and stores the URL path of the page it runs in ``st.session_state["wb.page"]``.
What it shows: a model picker over the zoo cards of the analyzer's kinds and tasks, a data picker
when it needs data, a class picker when its Config has a ``target`` field, the multi-choice and
choice fields of its Config up front and the other fields under "Advanced settings" (help text,
bounds and choices from the field metadata), a run button that starts a job with live progress and
cancel, and the Result's checks, figures and downloads. Nothing is computed here.
"""

import dataclasses

import streamlit as st

from pages._state import estimate_line, preset_bar
from pages._ui import (
    clear_error,
    config_form,
    data_picker,
    error_line,
    job_status,
    launch,
    model_picker,
    render_result,
    runtime,
    save_artifact,
    target_picker,
)
from workbench.core.analyzer import get_analyzer
from workbench.core.errors import WorkbenchError
from workbench.runtime import RunSpec

runtime()
try:
    analyzer = get_analyzer(st.session_state.get("wb.page", ""))
except WorkbenchError as e:  # opened outside the app's navigation
    error_line(e)
    st.stop()
KEY = analyzer.name
fields = dataclasses.fields(analyzer.Config)
up_front = tuple(f.name for f in fields if f.metadata.get("choices"))
multi = tuple(f.name for f in fields if f.metadata.get("choices") and f.metadata.get("multi"))

st.title(analyzer.title)
st.caption(" — ".join(x for x in (analyzer.description, analyzer.paper) if x))
st.caption(f"`{analyzer.name}` · for {', '.join(analyzer.supports)} models"
           + (" · runs on a private copy of the model" if analyzer.mutates_model else ""))

preset = preset_bar(analyzer, KEY)
card = model_picker(analyzer, KEY, optional=not analyzer.needs_model)
if card is None and analyzer.needs_model:
    st.stop()
has_target = card is not None and "target" in analyzer.Config.__dataclass_fields__ and bool(card.class_names)
left, right = st.columns(2)
with left:
    data_id = data_picker(card, KEY) if card is not None and analyzer.needs_data else None
with right:
    values = config_form(analyzer.Config, KEY, skip=tuple(f.name for f in fields if f.name not in up_front))
    if has_target:
        values["target"] = target_picker(card, KEY, analyzer.Config.__dataclass_fields__["target"].metadata["help"])
with st.expander("Advanced settings"):
    values.update(config_form(analyzer.Config, KEY, skip=up_front + (("target",) if has_target else ())))

missing = [n for n in multi if not values[n]] + (["data"] if card is not None and analyzer.needs_data
                                                  and not data_id else [])
if missing:
    st.caption(f"Pick at least one value for: {', '.join(n.replace('_', ' ') for n in missing)}.")
if preset:
    st.info(f"Preset **{preset}**: {analyzer.presets[preset].get('about', '')}. "
            + (estimate_line(analyzer, values, st.session_state.get(f"result.{KEY}"))
               or "The progress bar shows the time left once the first unit of work is timed."),
            icon=":material/schedule:")
if st.button(f"Run {analyzer.name.replace('_', ' ')}", type="primary", disabled=bool(missing),
             icon=":material/play_arrow:"):
    clear_error(KEY)
    launch(RunSpec(KEY, card.id if card is not None else "", data_id, values), KEY)
    st.rerun()

result = job_status(KEY)
if result is not None:
    st.subheader(result.title)
    render_result(result, KEY)
    save_artifact(result, KEY)
