"""LRP: explain a prediction with a conservation ledger (Explain) or prune a model by explaining (Prune)."""

import streamlit as st

from analyzers.lrp_pruning.result import curves_figure
from pages._state import widget
from pages._ui import (
    clear_error,
    config_form,
    data_picker,
    error_line,
    job_status,
    launch,
    render_result,
    runtime,
    visible_cards,
)
from workbench.core.analyzer import get_analyzer
from workbench.core.errors import WorkbenchError
from workbench.runtime import RunSpec

EXPLAIN, PRUNE = "lrp", "lrp_pruning"
runtime()
st.title("Layer-wise relevance propagation")
explain_tab, prune_tab = st.tabs(["Explain", "Prune"])


def _ready(analyzer, need_data: bool = False) -> dict:
    cards = [c for c in visible_cards() if analyzer.accepts(c) and getattr(c, "task", "classification")
             == "classification" and (not need_data or "training_data" in c.extra)]
    return {c.id: c for c in cards if c.status(c).get("available")}


def _pick_model(ready: dict, default: str, key: str):
    ids = list(ready)
    return ready[widget(st.selectbox, "Model", key, default if default in ids else ids[0], ids,
                        valid=lambda v: v in ids,
                        format_func=lambda i: i + ("" if ready[i].trained else "  (untrained)"))]


with explain_tab:
    lrp = get_analyzer(EXPLAIN)
    st.caption(f"{lrp.description} — {lrp.paper}")
    ready = _ready(lrp)
    if not ready:
        st.warning("No model is available yet: the model zoo has not been built on this server.")
    else:
        card = _pick_model(ready, "digits_resnet.sk", f"{EXPLAIN}.model")
        left, right = st.columns(2)
        with left:
            data_id = data_picker(card, EXPLAIN)
        with right:
            comps = lrp.Config.__dataclass_fields__["composite"].metadata["choices"]
            composite = widget(st.selectbox, "Composite", f"{EXPLAIN}.comp",
                               lrp.Config.__dataclass_fields__["composite"].default, comps,
                               valid=lambda v: v in comps,
                               help=lrp.Config.__dataclass_fields__["composite"].metadata["help"])
            names = list(card.class_names)
            classes = [-1, *range(len(names))]
            target = widget(st.selectbox, "Class to explain", f"{EXPLAIN}.target", -1, classes,
                            valid=lambda v: v in classes,
                            format_func=lambda i: "predicted class" if i < 0 else f"{i}: {names[i]}")
        with st.expander("Advanced settings"):
            values = config_form(lrp.Config, EXPLAIN, skip=("composite", "target"))
        if st.button("Run LRP", type="primary", disabled=not data_id):
            clear_error(EXPLAIN)
            launch(RunSpec(EXPLAIN, card.id, data_id, {**values, "composite": composite, "target": target}), EXPLAIN)
            st.rerun()
        result = job_status(EXPLAIN)
        if result is not None:
            st.subheader(result.title)
            if result.info.get("no_map_reason"):
                st.error(f"No heat map is drawn: {result.info['no_map_reason']}.", icon=":material/report:")
            render_result(result, EXPLAIN)


def _live(live: dict) -> None:
    snap = live.get("curves")
    if snap:
        st.plotly_chart(curves_figure(snap["rates"], snap["acc"], "Accuracy so far (live)"), key=f"live.{PRUNE}")


with prune_tab:
    pruner = get_analyzer(PRUNE)
    st.caption(f"{pruner.description} — {pruner.paper}")
    st.caption(pruner.page_note)
    ready = _ready(pruner, need_data=True)
    if not ready:
        st.warning("No model with built-in labelled data is available yet: the model zoo has not been built "
                   "on this server.")
    else:
        card = _pick_model(ready, "digits_vgg.sk", f"{PRUNE}.model")
        fields = pruner.Config.__dataclass_fields__
        left, right = st.columns(2)
        with left:
            choices = fields["criteria"].metadata["choices"]
            criteria = widget(st.multiselect, "Criteria", f"{PRUNE}.criteria", fields["criteria"].default.split(","),
                              choices, valid=lambda v: all(c in choices for c in v))
            rates = widget(st.text_input, "Pruning rates (% of units)", f"{PRUNE}.rates", fields["rates"].default,
                           help=fields["rates"].metadata["help"])
        with right:
            per_class = widget(st.number_input, "Reference samples per class", f"{PRUNE}.ref",
                               fields["reference_per_class"].default, min_value=1, max_value=1000,
                               help=fields["reference_per_class"].metadata["help"])
            tune = widget(st.checkbox, "Fine-tune between steps", f"{PRUNE}.ft", False,
                          help=fields["finetune"].metadata["help"])
        with st.expander("Schedule and advanced settings"):
            values = config_form(pruner.Config, PRUNE, skip=("criteria", "rates", "reference_per_class", "finetune"))
        if st.button("Run pruning", type="primary", disabled=not criteria):
            clear_error(PRUNE)
            launch(RunSpec(PRUNE, card.id, None, {**values, "criteria": ",".join(criteria), "rates": rates,
                                                  "reference_per_class": per_class, "finetune": tune}), PRUNE)
            st.rerun()
        result = job_status(PRUNE, live_render=_live)
        if result is not None:
            st.subheader(result.title)
            render_result(result, PRUNE)
            artifact = result.model_artifact()  # the result says whether it carries a model to save
            if artifact is not None:
                st.markdown(f"**Save the pruned model** ({artifact.label} of the units removed) as a new zoo card:")
                label = st.text_input("Label", value=artifact.label, key=f"{PRUNE}.label")
                if st.button("Save pruned model", icon=":material/save:", key=f"{PRUNE}.save"):
                    from workbench.runtime.zoo import add_model_artifact

                    try:
                        new_id = add_model_artifact(artifact, label)
                        st.success(f"Saved as {new_id}: it now appears in every analyzer's model list.")
                    except WorkbenchError as e:
                        error_line(e)
