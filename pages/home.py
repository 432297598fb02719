"""Home: what the workbench does, zoo status, where to start."""

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages._ui import runtime, visible_cards
from workbench.core.analyzer import PLUGIN_ERRORS, list_analyzers

runtime()
st.title("CNN interpretability workbench")
st.markdown(
    "Understand what a convolutional network has learned. Load a model from the offline **model zoo**, "
    "run an **analyzer** grounded in a paper, check its built-in **sanity checks**, and export a "
    "self-contained **HTML report**. The same runs are scriptable with the `workbench` command line.")

cards = [c.summary() for c in visible_cards()]
ready = [c for c in cards if c["available"]]
a, b, c = st.columns(3)
a.metric("Zoo models ready", f"{len(ready)} / {len(cards)}")
b.metric("Trained models", sum(1 for x in ready if x["trained"]))
c.metric("Analyzers", len(list_analyzers()))
missing = [x["id"] for x in cards if not x["available"]]
if missing:
    st.warning(f"Weights not built on this server for: {', '.join(missing)} (building the zoo takes about a "
               "minute on a CPU, in the workbench's setup).")

for name, err in PLUGIN_ERRORS.items():
    st.error(f"Plug-in {name} failed to load: {err}")

PAGES = Path(__file__).resolve().parent


def analyzer_link(an):
    """The page app.py registered for this analyzer: its own file, else the generic page at /<name>."""
    own = PAGES / an.page if an.page and "/" not in an.page else None
    if own is not None and own.is_file():
        return f"../pages/{an.page}"
    return st.Page(PAGES / "analyzer.py", title=an.title, url_path=an.name)


st.subheader("Where to start")
by_name = {an.name: an for an in list_analyzers()}
if "attribution" in by_name:
    st.page_link(analyzer_link(by_name["attribution"]), label="Attribution maps: which pixels drive a prediction?",
                 icon=":material/local_fire_department:")
LINKS = [("labs.py", "Teaching labs: graded, hands-on walks through every analyzer", "school"),
         ("zoo.py", "Browse the model zoo, or upload safetensors weights", "inventory_2"),
         ("report.py", "Collect results and download one HTML report", "description")]
for path, label, icon in LINKS:
    st.page_link(f"../pages/{path}", label=label, icon=f":material/{icon}:")

st.subheader("Analyzers")
for an in by_name.values():
    label = f"**{an.title}** (`{an.name}`, for {', '.join(an.supports)})"
    try:
        st.page_link(analyzer_link(an), label=label)
    except StreamlitAPIException:  # no page registered (a name taken by a fixed page): listed, not linked
        st.markdown(label)
    st.caption(f"{an.description} — *{an.paper}*")
st.caption("Every computation runs on the GPU when there is one, else on the CPU. Nothing is downloaded.")
