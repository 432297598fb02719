"""Streamlit entrypoint: page config and navigation over ../pages, nothing else."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see ENVIRONMENT.md

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="CNN workbench", page_icon=":material/biotech:", layout="wide")
nav = st.navigation({
    "Workbench": [st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
                  st.Page(PAGES / "zoo.py", title="Model zoo", icon=":material/inventory_2:")],
    "Analyzers": [st.Page(PAGES / "attribution.py", title="Attribution", icon=":material/local_fire_department:")],
    "Export": [st.Page(PAGES / "report.py", title="Report", icon=":material/description:")],
})
nav.run()
