"""Transferability: split a data set's classes into halves A and B, run Yosinski's AnB/BnB grid with a
live view of the cells, then see accuracy vs n beside the paper's numbers, CKA maps, LogME/LEEP and UMAP."""

import streamlit as st

from pages._figures import fit
from pages._state import estimate_line, preset_bar, widget
from pages._ui import clear_error, config_form, job_status, launch, render_result, runtime
from workbench.core.analyzer import get_analyzer
from workbench.runtime import RunSpec

KEY = "transferability"
LIVE_KEY = "transfer_grid"  # what the analyzer publishes after every cell
MAIN = ("dataset", "classes_a", "split_seed", "cuts", "seeds", "epochs")
runtime()
analyzer = get_analyzer(KEY)
fields = analyzer.Config.__dataclass_fields__
st.title("Feature transferability")
st.caption(f"{analyzer.description} — {analyzer.paper}")


def _live(live: dict) -> None:
    """The grid of cells filling in, re-drawn by the job panel's polling fragment."""
    snap = live.get(LIVE_KEY)
    if not snap:
        st.caption("Loading the data and training the first base network...")
        return
    for i, fig in enumerate(analyzer.result_class.live_figures(snap)):
        st.plotly_chart(fit(fig), key=f"live.{KEY}.{i}", width="stretch")


preset = preset_bar(analyzer, KEY)
a, b, c = st.columns(3)
dataset = widget(a.selectbox, "Data set", f"{KEY}.dataset", fields["dataset"].default,
                 fields["dataset"].metadata["choices"], help=fields["dataset"].metadata["help"])
split = widget(b.radio, "Class split", f"{KEY}.split", "random", ["random", "choose half A"], horizontal=True)
if split == "random":
    split_values = {"classes_a": "", "split_seed": widget(c.number_input, "Split seed", f"{KEY}.split_seed", 0,
                                                          min_value=0, max_value=2**31 - 1)}
else:
    picked = widget(c.multiselect, "Classes of half A (B = the rest)", f"{KEY}.classes", [0, 1, 2, 3, 4],
                    list(range(10)))
    split_values = {"classes_a": ",".join(map(str, picked)), "split_seed": 0}
d, e, f = st.columns(3)
cuts = widget(d.multiselect, "Cuts n (layers copied: conv1-4, fc5)", f"{KEY}.cuts",
              fields["cuts"].default.split(","), fields["cuts"].metadata["choices"])
seeds = widget(e.number_input, "Seeds", f"{KEY}.seeds", fields["seeds"].default, min_value=1, max_value=5)
epochs = widget(f.number_input, "Epochs (every network)", f"{KEY}.epochs", fields["epochs"].default,
                min_value=1, max_value=200)
with st.expander("Training, measures and UMAP settings"):
    values = config_form(analyzer.Config, KEY, skip=MAIN)
st.caption("Finished cells are kept in memory: a cancelled run resumes where it stopped when started again "
           "with the same settings.")

chosen = {**values, **split_values, "dataset": dataset, "cuts": ",".join(sorted(cuts)), "seeds": seeds,
          "epochs": epochs}
if preset:
    st.info(f"Preset **{preset}**: {analyzer.presets[preset]['about']}. "
            + (estimate_line(analyzer, chosen, st.session_state.get(f"result.{KEY}"))
               or "The progress bar shows the time left once the first cell is timed."), icon=":material/schedule:")
if st.button("Run the transfer grid", type="primary", icon=":material/play_arrow:", disabled=not cuts):
    clear_error(KEY)
    launch(RunSpec(KEY, "", None, chosen), KEY)
    st.rerun()

result = job_status(KEY, live_render=_live)
if result is not None:
    st.subheader(result.title)
    render_result(result, KEY)
