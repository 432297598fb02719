"""The Labs page's teacher mode: the variant a student id gets, its answer key (the lab's runs as jobs),
and the summary of a folder graded by `workbench lab grade` (score histogram, the question most missed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from pages._ui import error_line, job_status, job_warnings, launch
from workbench.core.errors import WorkbenchError
from workbench.core.labs import mark, student_seed
from workbench.runtime.lab_grading import class_summary
from workbench.runtime.labs import spec_for, student_lab


def _key_panel(lab, sid: str) -> None:
    mine, variant = student_lab(lab, sid)
    st.markdown(f"**Variant of `{sid}`** (seed {student_seed(lab.id, sid)}):")
    st.json(variant or {"(this lab has no variant parameters)": True}, expanded=True)
    runs = [r for r in mine.runs.values() if not r.own_model]
    tag = hashlib.sha256(json.dumps(variant, sort_keys=True, default=str).encode()).hexdigest()[:8]
    keys = {r.id: f"labkey.{lab.id}.{tag}.{r.id}" for r in runs}
    if st.button(f"Compute the answer key ({len(runs)} runs)", key=f"labkey.{lab.id}.go", type="primary"):
        for r in runs:
            launch(spec_for(r), keys[r.id])
        st.rerun()
    results = {}
    for r in runs:
        res = job_status(keys[r.id]) or st.session_state.get(f"result.{keys[r.id]}")
        if res is not None:
            results[r.id] = res
    if len(results) < len(runs):
        st.caption(f"{len(results)} of {len(runs)} runs done.")
        return
    rows = []
    for q in mine.questions:
        try:
            m = mark(mine, q, None, results)
        except WorkbenchError as e:
            error_line(e)
            return
        ref = m["reference"] if m["reference"] is not None else "(from the student's own run)"
        if q.kind == "property":
            ref = f"{q.answer} must be {q.expect} (the student's own run)"
        rows.append({"question": q.id, "kind": q.kind, "points": q.points, "key": str(ref), "prompt": q.prompt})
    st.dataframe(rows, hide_index=True, width="stretch")
    for r in runs:  # what the key's runs warned about (a loader's, a library's), under the key they made
        job_warnings(results[r.id], keys[r.id])


def _class_panel(lab) -> None:
    folder = st.text_input("Graded folder on the server (where the class was graded)", key=f"labclass.{lab.id}",
                           help="the folder the command-line grader wrote (workbench lab grade)")
    if not folder:
        return
    try:
        s = class_summary(Path(folder).expanduser())
    except WorkbenchError as e:
        error_line(e)
        return
    if s["lab"] != lab.id:
        st.warning(f"This folder grades lab {s['lab']}, not {lab.id}.")
    n = len(s["scores"])
    mean = sum(s["scores"]) / n if n else 0.0
    a, b, c = st.columns(3)
    a.metric("Graded", f"{n}", help=f"{len(s['errors'])} submission(s) could not be graded")
    b.metric("Mean score", f"{mean:.2f} / {s['total']:g}")
    c.metric("Most missed", s["most_missed"] or "none",
             help="missed = wrong or not answered" if s["most_missed"] else None)
    fig = go.Figure(go.Histogram(x=s["scores"], xbins={"start": -0.25, "end": s["total"] + 0.25, "size": 0.5}))
    fig.update_layout(title="Score distribution", xaxis_title=f"score (of {s['total']:g})",
                      yaxis_title="students", height=320, margin={"t": 40, "b": 40})
    st.plotly_chart(fig, key=f"labclass.{lab.id}.hist", width="stretch")
    missed = [{"question": q, "missed by": k, "of": n} for q, k in sorted(s["missed"].items(), key=lambda t: -t[1])]
    st.dataframe(missed, hide_index=True, width="stretch")
    for student, err in s["errors"]:
        st.error(f"{student}: {err}", icon=":material/error:")


def teacher_view(lab) -> None:
    st.subheader("A student's variant and answer key")
    sid = st.text_input("Student id", key=f"labkey.{lab.id}.student").strip()
    if sid:
        _key_panel(lab, sid)
    st.subheader("A graded class")
    _class_panel(lab)
