"""Streamlit entrypoint: page config and navigation over ../pages, nothing else.

The analyzer section is built from the registry: an analyzer that declares ``page`` (a file under
pages/) gets that hand-written page, every other one the generic page ``pages/analyzer.py`` under
the URL path ``/<analyzer name>``. A plug-in installed beside the workbench therefore gets a page
with no change here.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see ENVIRONMENT.md

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402

from workbench.core.analyzer import list_analyzers  # noqa: E402
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.io.weights import refuse_unsafe_environment  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "pages"
GENERIC = PAGES / "analyzer.py"
#: session key naming the URL path of the page being run: the generic page reads which analyzer it serves
PAGE_KEY = "wb.page"
FIXED = {"home", "zoo", "labs", "report", "analyzer", "sweeps"}  # URL paths the fixed pages infer from their files


def analyzer_pages() -> list:
    """One page per analyzer (one per shared hand-written page), sorted by title."""
    pages, seen = [], set()
    for an in sorted(list_analyzers(), key=lambda a: a.title.lower()):
        own = PAGES / an.page if an.page and "/" not in an.page else None
        if own is not None and own.is_file():
            if own.name not in seen:  # lrp and lrp_pruning share pages/lrp.py: one entry
                seen.add(own.name)
                pages.append(st.Page(own, title=an.title, icon=":material/analytics:"))
        elif an.name not in FIXED:
            pages.append(st.Page(GENERIC, title=an.title, icon=":material/analytics:", url_path=an.name))
    return pages


st.set_page_config(page_title="CNN workbench", page_icon=":material/biotech:", layout="wide")
try:
    refuse_unsafe_environment()
except WorkbenchError as e:  # no page runs when torch's safe loading is switched off
    st.error(e.one_line(), icon=":material/gpp_bad:")
    st.stop()
nav = st.navigation({
    "Workbench": [st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
                  st.Page(PAGES / "zoo.py", title="Model zoo", icon=":material/inventory_2:"),
                  st.Page(PAGES / "sweeps.py", title="Sweeps", icon=":material/grid_on:")],
    "Analyzers": analyzer_pages(),
    "Teaching": [st.Page(PAGES / "labs.py", title="Labs", icon=":material/school:")],
    "Export": [st.Page(PAGES / "report.py", title="Report", icon=":material/description:")],
}, expanded=True)  # every page listed: a collapsed menu hides pages behind "View more" as plug-ins add some
st.session_state[PAGE_KEY] = nav.url_path
nav.run()
