"""Learning stop: train a model live, watch each layer's output spread settle, and compare the paper's
stopping rule with validation patience and a train-loss plateau. Finished runs can be overlaid."""

import streamlit as st

from pages._figures import fit
from pages._state import estimate_line, preset_bar, widget
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
        st.plotly_chart(fit(fig), key=f"live.{KEY}.{i}", width="stretch")


cards = [c for c in list_cards() if analyzer.accepts(c) and "training_data" in c.extra]
ready = {c.id: c for c in cards if c.status(c).get("available")}
if not ready:
    st.warning("No trainable model is available yet: the model zoo has not been built on this server.")
    st.stop()
ids = list(ready)
preset = preset_bar(analyzer, KEY)
model_id = widget(st.selectbox, "Model (a fresh copy is trained on its built-in data set)", f"{KEY}.model",
                  "digits_vgg.sk" if "digits_vgg.sk" in ids else ids[0], ids, valid=lambda v: v in ids)
main = {}
for col, name in zip(st.columns(4), MAIN, strict=True):
    with col:  # the same widget keys as the form below uses (presets and fixes set them by name)
        main.update(config_form(analyzer.Config, KEY, skip=tuple(n for n in analyzer.Config.__dataclass_fields__
                                                                 if n != name)))
with st.expander("Rule, baselines, monitored layers and training settings"):
    values = config_form(analyzer.Config, KEY, skip=MAIN)
if preset:
    st.info(f"Preset **{preset}**: {analyzer.presets[preset]['about']}. "
            + (estimate_line(analyzer, {**values, **main}, st.session_state.get(f"result.{KEY}"))
               or "The progress bar shows the time left once the first epoch is timed."),
            icon=":material/schedule:")

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
        st.plotly_chart(fit(fig), key=f"overlay.{KEY}.{i}", width="stretch")
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
