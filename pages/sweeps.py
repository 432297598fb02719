"""Sweeps: run one analyzer over a grid of its Config values x models x seeds as cells (cached by content
hash, so a second start reuses finished cells), watch the aggregate grow as cells finish, keep the result.

The grid is built from the analyzer's Config metadata: choice fields offer their choices, other fields
take comma-separated values parsed by the field's type. Nothing is computed here: the sweep runs as a
job (workbench/sweep/jobs.py) on the local process pool by default, or on Ray.
"""

import dataclasses

import streamlit as st

from pages._figures import fit
from pages._ui import clear_error, error_line, job_status, models_for, render_result, runtime
from workbench.core.analyzer import list_analyzers
from workbench.core.errors import WorkbenchError
from workbench.sweep.api import default_cache
from workbench.sweep.base import cores
from workbench.sweep.engine import RunOptions
from workbench.sweep.grid import SweepSpec, parse_grid, parse_seeds
from workbench.sweep.jobs import SweepJob

KEY = "sweeps"
#: what a first visit sweeps, per analyzer (the pruning grid of Yeom et al.); others start with no key picked
DEFAULT_KEYS = {"lrp_pruning": {"criteria": ["lrp", "weight", "random"], "rates": "10,30,50"}}

runtime()
st.title("Sweeps")
st.caption("One analyzer over a grid of settings x models x seeds. Every cell is cached on disk by a hash of "
           "what it depends on, so a repeated or interrupted sweep only computes the missing cells. Curves show "
           "the mean over seeds with a band of one standard deviation.")

analyzers = sorted(list_analyzers(), key=lambda a: a.name)
names = [a.name for a in analyzers]
analyzer = analyzers[names.index(st.selectbox("Analyzer", names, key=f"{KEY}.analyzer",
                                              index=names.index("lrp_pruning") if "lrp_pruning" in names else 0))]
cards = sorted(models_for(analyzer), key=lambda c: not c.trained)
if analyzer.needs_model and not cards:
    st.warning("No model for this analyzer is available yet: the model zoo has not been built on this server.")
    st.stop()
ids = [c.id for c in cards]
default_model = ["digits_vgg.sk"] if "digits_vgg.sk" in ids else ids[:1]
models = st.multiselect("Models", ids, default=default_model, key=f"{KEY}.models.{analyzer.name}")

fields = {f.name: f for f in dataclasses.fields(analyzer.Config)}
preset = DEFAULT_KEYS.get(analyzer.name, {})
swept = st.multiselect("Sweep over", list(fields), default=[k for k in preset if k in fields],
                       key=f"{KEY}.keys.{analyzer.name}", help="Config fields to vary; the others keep their defaults")
items = []
cols = st.columns(max(1, min(3, len(swept))))
for i, name in enumerate(swept):
    f, k = fields[name], f"{KEY}.{analyzer.name}.{name}"
    with cols[i % len(cols)]:
        if f.metadata.get("choices"):
            picked = st.multiselect(name, list(f.metadata["choices"]), key=k, help=f.metadata.get("help"),
                                    default=preset.get(name) or [str(f.default).split(",")[0]])
            items.append(f"{name}={','.join(map(str, picked))}" if picked else f"{name}=")
        else:
            text = st.text_input(f"{name} (comma-separated)", value=str(preset.get(name, f.default)), key=k,
                                 help=f.metadata.get("help"))
            items.append(f"{name}={text}")
a, b, c = st.columns(3)
seeds_text = a.text_input("Seeds", "0-1", key=f"{KEY}.seeds", help="e.g. 0-4 or 0,2")
executor = b.radio("Executor", ["local", "ray"], horizontal=True, key=f"{KEY}.executor",
                   help="local: a process pool on this machine; ray: Ray tasks (an embedded Ray unless "
                        "WORKBENCH_RAY_ADDRESS names a cluster)")
workers = c.number_input("Workers", min_value=1, max_value=256, value=cores(), key=f"{KEY}.workers")

if st.button("Start sweep", type="primary", icon=":material/play_arrow:",
             disabled=analyzer.needs_model and not models):
    clear_error(KEY)
    try:
        spec = SweepSpec(analyzer.name, list(models) or [""], [None], parse_grid(analyzer.name, items), {},
                         parse_seeds(seeds_text))
        old = st.session_state.get(f"job.{KEY}")
        if old is not None and not old.done:
            old.cancel()
        st.session_state[f"job.{KEY}"] = SweepJob(spec, RunOptions(executor, int(workers), default_cache())).start()
        st.rerun()
    except WorkbenchError as e:
        error_line(e)


def live(snapshots: dict) -> None:
    """The aggregate of the cells finished so far (published by the sweep after every cell)."""
    partial = snapshots.get("sweep")
    if partial is not None and partial.figures():
        st.caption(f"{int(partial.metrics['cells_done'])} of {int(partial.metrics['cells_total'])} cells finished")
        st.plotly_chart(fit(partial.figures()[0]), key=f"{KEY}.live")


result = job_status(KEY, live)
if result is not None:
    st.subheader(result.title)
    render_result(result, KEY)
    with st.expander("Every cell"):
        st.dataframe(result.cell_table(), hide_index=True, width="stretch")
