"""LinearScope: a network frozen at one input is y = A x + c. Classifier tab: pixel votes, per-layer bias
waterfall, bias shares. Image-to-image tab: click an output / input pixel for its row / column, the bias
image and the singular-vector gallery. Widgets -> RunSpec -> job -> render; nothing is computed here."""

import streamlit as st

from pages._figures import fit, unplaceholder
from pages._state import widget
from pages._ui import (
    basket,
    clear_error,
    config_form,
    data_picker,
    job_status,
    launch,
    render_result,
    runtime,
    visible_cards,
)
from workbench.core.analyzer import get_analyzer
from workbench.runtime import RunSpec

KEY = "linear_scope"
CLS, I2I, PIX = "linear_scope.cls", "linear_scope.i2i", "linear_scope.pixel"
runtime()
analyzer = get_analyzer(KEY)
st.title("LinearScope: linear interpreters")
st.caption(f"{analyzer.description} — {analyzer.paper}")
st.markdown("Every ReLU mask, max-pool index and normalization statistic is frozen at the chosen input x0, so "
            "the network becomes exactly **y = A(x0) x + c(x0)**. Rows of A (what an output looks at) come from "
            "batched VJPs, columns (what an input pixel spreads to) from batched JVPs; A is never built. For "
            "ReLU / max-pool / BatchNorm networks A is the input Jacobian; smooth gates follow the *gate* setting.")


def _cards(task: str) -> dict:
    cards = [c for c in visible_cards() if analyzer.accepts(c) and c.task == task
             and not c.id.startswith("toy_")]
    return {c.id: c for c in cards if c.status(c).get("available")}


def _model_picker(task: str, key: str, preferred: str):
    ready = _cards(task)
    if not ready:
        st.warning(f"No {task} model is available yet: the model zoo has not been built on this server.")
        return None, None
    ids = list(ready)
    model_id = widget(st.selectbox, "Model", f"{key}.model", preferred if preferred in ids else ids[0], ids,
                      valid=lambda v: v in ids,
                        format_func=lambda i: i + ("" if ready[i].trained else "  (untrained)"))
    return model_id, ready[model_id]


def _classifier_tab() -> None:
    model_id, card = _model_picker("classification", CLS, "digits_resnet.sk")
    if card is None:
        return
    data_id = data_picker(card, CLS, ["digits", "skimage"], "Image")
    with st.expander("Settings"):
        values = config_form(analyzer.Config, CLS, skip=("rows", "columns"))
    if st.button("Run LinearScope (classifier)", type="primary", disabled=not data_id, key=f"{CLS}.run"):
        clear_error(CLS)
        launch(RunSpec(KEY, model_id, data_id, values), CLS)
        st.rerun()
    result = job_status(CLS)
    if result is not None:
        st.subheader(result.title)
        render_result(result, CLS)


def _clicked(event) -> tuple[int, int] | None:
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", []) or []
    if not points:
        return None
    p = points[0]
    return int(round(float(p["y"]))), int(round(float(p["x"])))


def _pixel_explorer(result, model_id: str, data_id: str, values: dict) -> None:
    """Clickable output and input images; a click (or the number inputs) runs a small job for that pixel."""
    st.subheader("Rows and columns at any pixel")
    out_hw, in_hw = result.arrays["output"].shape[-2:], result.arrays["x0"].shape[-2:]
    left, right = st.columns(2)
    picks = {}
    for col, which, hw in ((left, "output", out_hw), (right, "input", in_hw)):
        with col:
            event = st.plotly_chart(unplaceholder(result.pixel_picker(which)), key=f"{PIX}.{which}.fig",
                                    on_select="rerun", selection_mode="points", width="stretch")
            hit = _clicked(event)
            if hit is not None and hit != st.session_state.get(f"{PIX}.{which}.last"):
                st.session_state[f"{PIX}.{which}.last"] = hit
                st.session_state[f"{PIX}.{which}.r"], st.session_state[f"{PIX}.{which}.c"] = hit
                st.session_state[f"{PIX}.auto"] = True
            r = st.number_input(f"{which} row", 0, int(hw[0]) - 1, int(hw[0]) // 2, key=f"{PIX}.{which}.r")
            c = st.number_input(f"{which} column", 0, int(hw[1]) - 1, int(hw[1]) // 2, key=f"{PIX}.{which}.c")
            picks[which] = f"{int(r)},{int(c)}"
    go = st.button("Show row and column", key=f"{PIX}.run", icon=":material/ads_click:")
    if go or st.session_state.pop(f"{PIX}.auto", False):
        clear_error(PIX)
        launch(RunSpec(KEY, model_id, data_id, {**values, "rows": picks["output"], "columns": picks["input"],
                                                  "svd_k": 0}), PIX)
        st.rerun()
    pix = job_status(PIX)
    if pix is not None and pix.info.get("mode") == "image2image":
        st.plotly_chart(fit(pix.rows_figure()), key=f"{PIX}.rows", width="stretch")
        st.plotly_chart(fit(pix.columns_figure()), key=f"{PIX}.cols", width="stretch")
        if st.button("Add this pixel's result to the report", key=f"{PIX}.add", icon=":material/add:"):
            basket().append(pix)
            st.toast(f"Added to the report basket ({len(basket())} item(s))")


def _image2image_tab() -> None:
    model_id, card = _model_picker("image2image", I2I, "sr_cnn.x2")
    if card is None:
        return
    data_id = data_picker(card, I2I, ["skimage"], "Image")
    with st.expander("Settings"):
        values = config_form(analyzer.Config, I2I, skip=("top_classes", "rows", "columns"))
    if st.button("Run LinearScope (image-to-image)", type="primary", disabled=not data_id, key=f"{I2I}.run"):
        clear_error(I2I)
        launch(RunSpec(KEY, model_id, data_id, values), I2I)
        st.rerun()
    result = job_status(I2I)
    if result is None:
        return
    st.subheader(result.title)
    if result.info.get("mode") == "image2image" and result.model == model_id and result.data == data_id:
        _pixel_explorer(result, model_id, data_id, {k: v for k, v in values.items() if k != "svd_k"})
    render_result(result, I2I)


tab_cls, tab_i2i = st.tabs(["Classifier", "Image-to-image"])
with tab_cls:
    _classifier_tab()
with tab_i2i:
    _image2image_tab()
