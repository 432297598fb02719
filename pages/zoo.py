"""Model zoo: browse cards, inspect an architecture, add safetensors weights."""

import streamlit as st

from pages._ui import error_line, runtime, visible_cards
from pages._uploads import weights_upload
from workbench.core.cards import get_card
from workbench.core.errors import WorkbenchError
from workbench.runtime.inspect import architecture_table

skipped = runtime()["user_cards"].skipped
st.title("Model zoo")
for line in skipped:  # a stored upload that could not be registered: said here, not only in the server's log
    st.warning(f"Your stored weights were not loaded: {line}", icon=":material/info:")
rows = [c.summary() for c in visible_cards()]
st.dataframe(
    [{"id": r["id"], "kind": r["kind"], "dataset": r["dataset"],
      "weights": r["weights_source"] + ("" if r["available"] else " (not built)"),
      "trained": "yes" if r["trained"] else "UNTRAINED", "params": r["params"],
      "test acc": r["accuracy"], "sha256": (r["sha256"] or "")[:16]} for r in rows],
    hide_index=True, width="stretch")

ids = [r["id"] for r in rows]
chosen = st.selectbox("Model card", ids, index=ids.index("digits_vgg.sk") if "digits_vgg.sk" in ids else 0)
card = next(r for r in rows if r["id"] == chosen)
left, right = st.columns([2, 3])
with left:
    st.markdown(f"### {card['title']}")
    if not card["trained"]:
        st.warning("Untrained: seeded random weights. Results show the architecture, not learned features.")
    st.markdown(f"{card['description']}\n\n"
                f"- **kind** {card['kind']}, input {tuple(card['input_shape'])}, {card['classes']} classes\n"
                f"- **dataset** {card['dataset']}\n- **weights** {card['weights_source']}: "
                f"`{card['sha256'] or '-'}`\n- **parameters** {card['params'] or 0:,}\n"
                f"- **test accuracy** {card['accuracy'] if card['accuracy'] is not None else '-'}\n"
                f"- **licence** {card['licence'] or '-'}\n- **cite** {card['citation'] or '-'}")
    if card["note"]:
        st.caption(card["note"])
with right:
    if card["available"]:
        if st.toggle("Show the layer table (one dry forward pass)", key="zoo.layers"):
            try:
                st.dataframe(list(architecture_table(chosen)), hide_index=True, height=360)
            except WorkbenchError as e:
                error_line(e)
    else:
        st.info("Weights are not built yet on this server (the model zoo is built with the workbench's setup).")

st.subheader("Add weights for a zoo architecture")
st.caption("Safetensors only (nothing you upload is ever unpickled): keys, shapes and dtypes must match "
           "the architecture; at most 250 MB.")
bases = [r["id"] for r in rows if r["weights_source"] != "user"]
base = st.selectbox("Architecture", bases, key="zoo.base")
# any file: a .pt or a renamed pickle is refused in one line naming it (the picker's own refusal is a silent icon)
up = st.file_uploader("Weights file (.safetensors)", key="zoo.upload")
if up is not None and st.button("Validate and add", type="primary"):
    new_id = weights_upload(base, up)
    if new_id is not None:
        st.success(f"Added `{new_id}` ({get_card(new_id).title}) from {up.name}. It is now in every model picker.")
