"""Report: the results kept in this browser session, downloaded as one self-contained HTML file."""

import streamlit as st

from pages._ui import basket, runtime
from pages._uploads import NAMES, display
from workbench.report import figure_bytes, render_report

runtime()
st.title("Report")
items = basket()
if not items:
    st.info("The report basket is empty. Run an analysis and press **Add to report**.")
    st.stop()

st.caption("Each result keeps its figures, checks, metrics, configuration and provenance. The HTML file "
           "inlines plotly.js and fetches nothing.")
sizes: dict = st.session_state.setdefault("report.sizes", {})


def _size(r) -> int:
    """Bytes the result's figures take in the report (as written there), measured once per result."""
    if id(r) not in sizes:
        sizes[id(r)] = figure_bytes(r)
    return sizes[id(r)]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


for i, r in enumerate(list(items)):
    a, b = st.columns([6, 1])
    passed = sum(c.passed for c in r.checks)
    # a title ending in "· " would leave the closing ** unmatched: markdown shows them literally
    name = display(r.title).strip().rstrip("·").strip().replace("*", "\\*")
    a.markdown(f"**{i + 1}. {name}** — checks {passed}/{len(r.checks)} pass · about {_mb(_size(r))} in the report")
    if b.button("Remove", key=f"rm.{i}"):
        items.pop(i)
        st.rerun()
title = st.text_input("Report title", "CNN workbench report")
st.caption(f"Total about {_mb(sum(_size(r) for r in items))} of figures, plus plotly.js once (about 4.8 MB).")
html = render_report(items, title, names=st.session_state.get(NAMES))  # uploads titled by their file names
st.download_button("Download HTML report", html, file_name="workbench-report.html", mime="text/html",
                   type="primary", icon=":material/download:")
if st.button("Empty the basket"):
    items.clear()
    st.rerun()
