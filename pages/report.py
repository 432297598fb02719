"""Report: the results kept in this browser session, downloaded as one self-contained HTML file."""

import streamlit as st

from pages._ui import basket, runtime
from workbench.report import render_report

runtime()
st.title("Report")
items = basket()
if not items:
    st.info("The report basket is empty. Run an analysis and press **Add to report**.")
    st.stop()

st.caption("Each result keeps its figures, checks, metrics, configuration and provenance. The HTML file "
           "inlines plotly.js and fetches nothing.")
for i, r in enumerate(list(items)):
    a, b = st.columns([6, 1])
    passed = sum(c.passed for c in r.checks)
    a.markdown(f"**{i + 1}. {r.title}** — checks {passed}/{len(r.checks)} pass")
    if b.button("Remove", key=f"rm.{i}"):
        items.pop(i)
        st.rerun()
title = st.text_input("Report title", "CNN workbench report")
st.download_button("Download HTML report", render_report(items, title), file_name="workbench-report.html",
                   mime="text/html", type="primary", icon=":material/download:")
if st.button("Empty the basket"):
    items.clear()
    st.rerun()
