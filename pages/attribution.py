"""Attribution: pick a model, an image, methods and a class; see heat maps and the sanity checks."""

import streamlit as st

from pages._ui import clear_error, config_form, error_line, job_status, launch, models_for, render_result, runtime
from workbench.core.analyzer import get_analyzer
from workbench.core.errors import WorkbenchError
from workbench.data import list_items, store_upload
from workbench.io.images import decode_image
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
    source = st.radio("Image", ["built-in", "upload"], horizontal=True)
    data_id = None
    if source == "built-in":
        default_set = card.default_data.split(":")[0]
        sets = ["digits", "skimage"]
        dataset = st.selectbox("Data set", sets, index=sets.index(default_set) if default_set in sets else 1)
        items = list_items(dataset)
        default = card.default_data if card.default_data in items else items[0]
        data_id = st.selectbox("Sample", items, index=items.index(default))
    else:
        up = st.file_uploader("PNG or JPEG (at most 20 MB, 4096 px a side)", type=["png", "jpg", "jpeg"])
        if up is not None:
            try:
                data_id = store_upload(decode_image(up.getvalue(), up.name))
            except WorkbenchError as e:
                error_line(e)
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
