"""Kernel spectra: pick a model (and optionally a second one to compare), see singular values, filter
frequency responses, ESDs and the NTK in tabs; or run the seed paper's locality experiment."""

import streamlit as st

from pages._ui import basket, clear_error, config_form, job_status, launch, models_for, runtime
from workbench.core.analyzer import get_analyzer
from workbench.runtime import RunSpec

KEY = "kernel_spectra"
KEY_B = "kernel_spectra_b"
MODEL_FIELDS = ("experiment", "parts", "ntk", "n", "s", "depths", "width", "n_max", "n_test", "reps")
LOCALITY_FIELDS = ("s", "depths", "width", "n_max", "n_test", "reps")
runtime()
analyzer = get_analyzer(KEY)
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
        st.plotly_chart(fig, key=f"fig.{key}.{tab}.{i}", width="stretch")
    fig = _layer_figure(result, tab, key)
    if fig is not None:
        st.plotly_chart(fig, key=f"fig.{key}.{tab}.layer", width="stretch")


def _checks(result, key: str) -> None:
    if result.summary():
        st.info(result.summary())
    st.dataframe([{"check": c.name, "result": "pass" if c.passed else "FAIL", "value": c.value,
                   "threshold": c.threshold, "meaning": c.message} for c in result.checks],
                 hide_index=True, width="stretch", key=f"checks.{key}")
    with st.expander("Metrics, configuration and provenance"):
        st.json({"metrics": result.metrics, "config": result.config,
                 "provenance": result.to_json()["provenance"]}, expanded=False)
    if st.button("Add to report", key=f"add.{key}", icon=":material/add:"):
        items = basket()
        if not any(r is result for r in items):
            items.append(result)
        st.toast(f"In the report basket ({len(items)} item(s))")


mode = st.radio("What to run", ["Model spectra", "Locality experiment"], horizontal=True)
if mode == "Model spectra":
    cards = models_for(analyzer)
    ids = [c.id for c in cards]
    if not ids:
        st.warning("No model is available yet: run `make zoo`.")
        st.stop()
    left, right = st.columns(2)
    with left:
        model_a = st.selectbox("Model", ids, index=ids.index("digits_vgg.sk") if "digits_vgg.sk" in ids else 0)
        compare = st.checkbox("Compare with a second model (e.g. untrained, or a pruned version)")
        model_b = st.selectbox("Second model", ids, index=min(1, len(ids) - 1)) if compare else None
    with right:
        choices = analyzer.Config.__dataclass_fields__["parts"].metadata["choices"]
        parts = st.multiselect("Weight analyses", choices, default=list(choices))
        ntk = st.checkbox("Empirical NTK spectrum (slower)")
        n = st.slider("NTK inputs n", 16, 512, 64, step=16, disabled=not ntk)
    with st.expander("Advanced settings"):
        values = config_form(analyzer.Config, KEY, skip=MODEL_FIELDS)
    if st.button("Run kernel spectra", type="primary", disabled=not parts and not ntk):
        clear_error(KEY)
        clear_error(KEY_B)
        cfg = {**values, "parts": ",".join(parts or list(choices)), "ntk": ntk, "n": n}
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
        with box:
            for col, r, key in zip(st.columns(len(results)), results, (KEY, KEY_B), strict=False):
                with col:
                    _show(r, tab, key)
    for col, r, key in zip(st.columns(len(results)), results, (KEY, KEY_B), strict=False):
        with col:
            _checks(r, key)
elif st.session_state.get(f"error.{KEY}") is None:
    st.caption("Results appear here: one tab per analysis, two columns when comparing models.")
