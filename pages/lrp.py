"""LRP: explain a prediction with a conservation ledger (Explain) or prune a model by explaining (Prune)."""

import streamlit as st

from analyzers.lrp_pruning.result import curves_figure
from pages._ui import clear_error, config_form, data_picker, error_line, job_status, launch, render_result, runtime
from workbench.core.analyzer import get_analyzer
from workbench.core.cards import list_cards
from workbench.core.errors import WorkbenchError
from workbench.runtime import RunSpec

EXPLAIN, PRUNE = "lrp", "lrp_pruning"
runtime()
st.title("Layer-wise relevance propagation")
explain_tab, prune_tab = st.tabs(["Explain", "Prune"])


def _ready(analyzer, need_data: bool = False) -> dict:
    cards = [c for c in list_cards() if c.kind in analyzer.supports and getattr(c, "task", "classification")
             == "classification" and (not need_data or "training_data" in c.extra)]
    return {c.id: c for c in cards if c.status(c).get("available")}


def _pick_model(ready: dict, default: str, key: str):
    ids = list(ready)
    return ready[st.selectbox("Model", ids, index=ids.index(default) if default in ids else 0, key=key,
                              format_func=lambda i: i + ("" if ready[i].trained else "  (untrained)"))]


with explain_tab:
    lrp = get_analyzer(EXPLAIN)
    st.caption(f"{lrp.description} — {lrp.paper}")
    ready = _ready(lrp)
    if not ready:
        st.warning("No model is available yet: run `make zoo`.")
    else:
        card = _pick_model(ready, "digits_resnet.sk", f"{EXPLAIN}.model")
        left, right = st.columns(2)
        with left:
            data_id = data_picker(card, EXPLAIN)
        with right:
            comps = lrp.Config.__dataclass_fields__["composite"].metadata["choices"]
            composite = st.selectbox("Composite", comps, key=f"{EXPLAIN}.comp",
                                     help=lrp.Config.__dataclass_fields__["composite"].metadata["help"])
            names = list(card.class_names)
            target = st.selectbox("Class to explain", [-1, *range(len(names))], key=f"{EXPLAIN}.target",
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
    ready = _ready(pruner, need_data=True)
    if not ready:
        st.warning("No model with built-in labelled data is available yet: run `make zoo`.")
    else:
        card = _pick_model(ready, "digits_vgg.sk", f"{PRUNE}.model")
        fields = pruner.Config.__dataclass_fields__
        left, right = st.columns(2)
        with left:
            criteria = st.multiselect("Criteria", fields["criteria"].metadata["choices"],
                                      default=fields["criteria"].default.split(","), key=f"{PRUNE}.criteria")
            rates = st.text_input("Pruning rates (% of units)", value=fields["rates"].default, key=f"{PRUNE}.rates",
                                  help=fields["rates"].metadata["help"])
        with right:
            per_class = st.number_input("Reference samples per class", 1, 1000, fields["reference_per_class"].default,
                                        key=f"{PRUNE}.ref", help=fields["reference_per_class"].metadata["help"])
            tune = st.checkbox("Fine-tune between steps", value=False, key=f"{PRUNE}.ft",
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
