"""Kernel spectra: pick a model (and optionally a second one to compare), see singular values, filter
frequency responses, ESDs and the NTK in tabs; or run the seed paper's locality experiment."""

import streamlit as st

from pages._figures import fit
from pages._state import estimate_line, preset_bar, widget
from pages._ui import (
    basket,
    clear_error,
    config_form,
    failing_checks,
    job_status,
    job_warnings,
    launch,
    models_for,
    runtime,
    settings_caption,
)
from workbench.core.analyzer import get_analyzer
from workbench.runtime import RunSpec

KEY = "kernel_spectra"
KEY_B = "kernel_spectra_b"
MODEL_FIELDS = ("experiment", "parts", "ntk", "n", "s", "depths", "width", "n_max", "n_test", "reps")
LOCALITY_FIELDS = ("s", "depths", "width", "n_max", "n_test", "reps")
runtime()
analyzer = get_analyzer(KEY)
FIELDS = tuple(analyzer.Config.__dataclass_fields__)
st.title("Kernel spectra")
st.caption(f"{analyzer.description} — {analyzer.paper}")


def _layer_figure(result, tab: str, key: str):
    """The per-layer figure of a tab for the layer picked in a select box (None when the tab has none)."""
    if tab == "Singular values" and result.conv_layers:
        j = st.selectbox("Layer", range(len(result.conv_layers)), format_func=lambda i: result.conv_layers[i],
                         key=f"{key}.svlayer")
        return result.sv_map_figure([j])
    if tab == "Frequency responses" and result.conv_layers:
        j = st.selectbox("Layer", range(len(result.conv_layers)), format_func=lambda i: result.conv_layers[i],
                         key=f"{key}.flayer")
        return result.filter_figure(j)
    if tab == "ESD" and "esd_alpha" in result.arrays:
        i = st.selectbox("Layer", range(len(result.layers)), format_func=lambda i: result.layers[i],
                         key=f"{key}.elayer")
        return result.esd_figure([i])
    return None


def _show(result, tab: str, key: str) -> None:
    st.markdown(f"**{result.model or 'locality experiment'}**")
    for i, fig in enumerate(result.figure_groups().get(tab, [])):
        st.plotly_chart(fit(fig), key=f"fig.{key}.{tab}.{i}", width="stretch")
    fig = _layer_figure(result, tab, key)
    if fig is not None:
        st.plotly_chart(fit(fig), key=f"fig.{key}.{tab}.layer", width="stretch")


def _checks(result, key: str) -> None:
    settings_caption(result)
    if result.summary():
        st.info(result.summary())
    failing_checks(result, key)
    job_warnings(result, key)
    with st.expander("Metrics, configuration and provenance"):
        st.json({"metrics": result.metrics, "config": result.config,
                 "provenance": result.to_json()["provenance"]}, expanded=False)
    if st.button("Add to report", key=f"add.{key}", icon=":material/add:"):
        items = basket()
        if not any(r is result for r in items):
            items.append(result)
        st.toast(f"In the report basket ({len(items)} item(s))")


mode = widget(st.radio, "What to run", f"{KEY}.mode", "Model spectra", ["Model spectra", "Locality experiment"],
              horizontal=True)
if mode == "Model spectra":
    cards = models_for(analyzer)
    ids = [c.id for c in cards]
    if not ids:
        st.warning("No model is available yet: the model zoo has not been built on this server.")
        st.stop()
    preset = preset_bar(analyzer, KEY)
    left, right = st.columns(2)
    with left:
        model_a = widget(st.selectbox, "Model", f"{KEY}.model", "digits_vgg.sk" if "digits_vgg.sk" in ids else ids[0],
                         ids, valid=lambda v: v in ids)
        compare = widget(st.checkbox, "Compare with a second model (e.g. untrained, or a pruned version)",
                         f"{KEY}.compare", False)
        model_b = widget(st.selectbox, "Second model", f"{KEY}.model_b", ids[min(1, len(ids) - 1)], ids,
                         valid=lambda v: v in ids) if compare else None
    with right:
        parts = config_form(analyzer.Config, KEY, skip=tuple(f for f in FIELDS if f != "parts"))["parts"]
        ntk = config_form(analyzer.Config, KEY, skip=tuple(f for f in FIELDS if f != "ntk"))["ntk"]
        n = widget(st.slider, "NTK inputs n", f"{KEY}.n", 32, 16, 512, step=16, disabled=not ntk,
                   valid=lambda v: isinstance(v, int) and 16 <= v <= 512)
    with st.expander("Advanced settings"):
        values = config_form(analyzer.Config, KEY, skip=MODEL_FIELDS)
    cfg = {**values, "parts": parts, "ntk": ntk, "n": n}
    if preset:
        st.info(f"Preset **{preset}**: {analyzer.presets[preset]['about']}"
                + (" for each of the two models" if model_b else "") + ". "
                + (estimate_line(analyzer, cfg, st.session_state.get(f"result.{KEY}"))
                   or "The progress bar shows the time left once the first part is timed."),
                icon=":material/schedule:")
    if st.button("Run kernel spectra", type="primary", disabled=not parts and not ntk):
        clear_error(KEY)
        clear_error(KEY_B)
        cfg["parts"] = parts or ",".join(analyzer.Config.__dataclass_fields__["parts"].metadata["choices"])
        launch(RunSpec(KEY, model_a, None, cfg), KEY)
        if model_b:
            launch(RunSpec(KEY, model_b, None, cfg), KEY_B)
        else:
            st.session_state.pop(f"result.{KEY_B}", None)
        st.rerun()
else:
    with st.expander("Experiment settings", expanded=True):
        values = config_form(analyzer.Config, f"{KEY}.loc", skip=tuple(f for f in analyzer.Config.__dataclass_fields__
                                                                         if f not in LOCALITY_FIELDS))
    if st.button("Run locality experiment", type="primary"):
        clear_error(KEY)
        st.session_state.pop(f"result.{KEY_B}", None)
        launch(RunSpec(KEY, "", None, {**values, "experiment": "locality"}), KEY)
        st.rerun()

results = [r for r in (job_status(KEY), job_status(KEY_B)) if r is not None]
if results:
    st.subheader(" vs ".join(r.title for r in results))
    tabs = [t for t in dict.fromkeys(t for r in results for t in r.figure_groups())]
    for tab, box in zip(tabs, st.tabs(tabs), strict=True):
        with box:  # one model per row: side-by-side columns squeezed the subplot titles into each other
            for r, key in zip(results, (KEY, KEY_B), strict=False):
                _show(r, tab, key)
    for r, key in zip(results, (KEY, KEY_B), strict=False):
        st.markdown(f"**Checks: {r.model or 'locality experiment'}**")
        _checks(r, key)
elif st.session_state.get(f"error.{KEY}") is None:
    st.caption("Results appear here: one tab per analysis, one model per row when comparing models.")
