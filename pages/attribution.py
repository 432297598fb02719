"""Attribution: pick a model, an image, methods and a class; see heat maps and the sanity checks."""

import streamlit as st

from pages._ui import (
    clear_error,
    config_form,
    data_picker,
    job_status,
    launch,
    models_for,
    render_result,
    runtime,
)
from workbench.core.analyzer import get_analyzer
from workbench.runtime import RunSpec

KEY = "attribution"
runtime()
analyzer = get_analyzer(KEY)
st.title("Attribution maps")
st.caption(f"{analyzer.description} — {analyzer.paper}")

cards = models_for(analyzer, available=False)
ready = {c.id: c for c in cards if c.status(c).get("available")}
if not ready:
    st.warning("No image model is available yet: run `make zoo`.")
    st.stop()
ids = list(ready)
model_id = st.selectbox("Model", ids, index=ids.index("digits_vgg.sk") if "digits_vgg.sk" in ids else 0,
                        format_func=lambda i: i + ("" if ready[i].trained else "  (untrained)"))
card = ready[model_id]

left, right = st.columns(2)
with left:
    data_id = data_picker(card, KEY, ["digits", "skimage"], "Image")
with right:
    methods = st.multiselect("Methods", analyzer.Config.__dataclass_fields__["method"].metadata["choices"],
                             default=["integrated_gradients", "saliency", "grad_cam"])
    pick = st.radio("Class to explain", ["predicted", "choose"], horizontal=True)
    target = -1
    if pick == "choose":
        names = list(card.class_names)
        target = st.selectbox("Class", range(len(names)), format_func=lambda i: f"{i}: {names[i]}")
with st.expander("Advanced settings"):
    values = config_form(analyzer.Config, KEY, skip=("method", "target"))

if st.button("Run attribution", type="primary", disabled=not (data_id and methods)):
    clear_error(KEY)
    launch(RunSpec(KEY, model_id, data_id, {**values, "method": ",".join(methods), "target": target}), KEY)
    st.rerun()

result = job_status(KEY)
if result is not None:
    st.subheader(result.title)
    render_result(result, KEY)
