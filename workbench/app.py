"""Streamlit entrypoint: page config and navigation over ../pages, nothing else."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see ENVIRONMENT.md

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402

from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.io.weights import refuse_unsafe_environment  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="CNN workbench", page_icon=":material/biotech:", layout="wide")
try:
    refuse_unsafe_environment()
except WorkbenchError as e:  # no page runs when torch's safe loading is switched off
    st.error(e.one_line(), icon=":material/gpp_bad:")
    st.stop()
nav = st.navigation({
    "Workbench": [st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
                  st.Page(PAGES / "zoo.py", title="Model zoo", icon=":material/inventory_2:")],
    "Analyzers": [st.Page(PAGES / "attribution.py", title="Attribution", icon=":material/local_fire_department:"),
                  st.Page(PAGES / "eeg_saliency.py", title="EEG saliency", icon=":material/neurology:"),
                  st.Page(PAGES / "kernel_spectra.py", title="Kernel spectra", icon=":material/graphic_eq:"),
                  st.Page(PAGES / "learning_stop.py", title="Learning stop", icon=":material/timer_off:"),
                  st.Page(PAGES / "linear_scope.py", title="LinearScope", icon=":material/linear_scale:"),
                  st.Page(PAGES / "lrp.py", title="LRP and pruning", icon=":material/account_tree:"),
                  st.Page(PAGES / "receptive_field.py", title="Receptive fields",
                          icon=":material/filter_center_focus:"),
                  st.Page(PAGES / "transferability.py", title="Transferability", icon=":material/swap_horiz:")],
    "Teaching": [st.Page(PAGES / "labs.py", title="Labs", icon=":material/school:")],
    "Export": [st.Page(PAGES / "report.py", title="Report", icon=":material/description:")],
})
nav.run()
