"""Learning stop: train a model live, watch each layer's output spread settle, and compare the paper's
stopping rule with validation patience and a train-loss plateau. Finished runs can be overlaid."""

import streamlit as st

from pages._ui import BASKET_MAX, basket, clear_error, config_form, job_status, launch, render_result, runtime
from workbench.core.analyzer import get_analyzer
from workbench.core.cards import list_cards
from workbench.runtime import RunSpec

KEY = "learning_stop"
RUNS = f"{KEY}.runs"
MAX_RUNS = 8
MAIN = ("optimizer", "lr", "max_epochs", "seed")
runtime()
analyzer = get_analyzer(KEY)
st.title("Learning-stop detection")
st.caption(f"{analyzer.description} — {analyzer.paper}")


def _live(live: dict) -> None:
    """Curves of the running job, re-drawn by the job panel's polling fragment."""
    snap = live.get(KEY)
    if not snap:
        st.caption("Timing the monitor and waiting for the first epoch...")
        return
    partial = analyzer.result_class(KEY, metrics=snap["metrics"], arrays=snap["arrays"], info=snap["info"])
    st.caption(f"Epoch {snap['epoch']} of {snap['max_epochs']} (live; stop markers appear as criteria fire)")
    for i, fig in enumerate(partial.live_figures()):
        st.plotly_chart(fig, key=f"live.{KEY}.{i}", width="stretch")


cards = [c for c in list_cards() if c.kind in analyzer.supports and "training_data" in c.extra]
ready = {c.id: c for c in cards if c.status(c).get("available")}
if not ready:
    st.warning("No trainable model is available yet: run `make zoo`.")
    st.stop()
ids = list(ready)
model_id = st.selectbox("Model (a fresh copy is trained on its built-in data set)", ids,
                        index=ids.index("digits_vgg.sk") if "digits_vgg.sk" in ids else 0)
fields = analyzer.Config.__dataclass_fields__
a, b, c, d = st.columns(4)
main = {"optimizer": a.selectbox("Optimizer", fields["optimizer"].metadata["choices"], key=f"{KEY}.opt"),
        "lr": b.number_input("Learning rate", value=fields["lr"].default, min_value=0.0, max_value=10.0,
                             format="%.4f", key=f"{KEY}.lr_main"),
        "max_epochs": c.number_input("Max epochs", value=fields["max_epochs"].default, min_value=2,
                                     max_value=1000, key=f"{KEY}.epochs"),
        "seed": d.number_input("Seed", value=0, min_value=0, max_value=2**31 - 1, key=f"{KEY}.seed_main")}
with st.expander("Rule, baselines, monitored layers and training settings"):
    values = config_form(analyzer.Config, KEY, skip=MAIN)

if st.button("Train and watch", type="primary", icon=":material/play_arrow:"):
    clear_error(KEY)
    launch(RunSpec(KEY, model_id, None, {**values, **main}), KEY)
    st.rerun()

result = job_status(KEY, live_render=_live)
runs: list = st.session_state.setdefault(RUNS, [])
if result is not None and not any(r is result for r in runs):
    runs.append(result)
    del runs[:-MAX_RUNS]
if len(runs) > 1:
    st.subheader(f"{len(runs)} finished runs overlaid")
    overlay = analyzer.result_class.overlay(runs)
    for i, fig in enumerate(overlay.figures()):
        st.plotly_chart(fig, key=f"overlay.{KEY}.{i}", width="stretch")
    left, right = st.columns(2)
    if left.button("Add overlay to report", icon=":material/add:"):
        items = basket()
        items.append(overlay)
        del items[:-BASKET_MAX]
        st.toast(f"Added the overlay of {len(runs)} runs to the report basket")
    if right.button("Clear runs", icon=":material/delete:"):
        runs.clear()
        st.rerun()
if result is not None:
    st.subheader(result.title)
    render_result(result, KEY)
