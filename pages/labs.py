"""Labs: step through a teaching lab (your own variant), run its analyses, answer, see the score, export the
lab sheet; the teacher mode shows a student's variant and key and a graded class (pages/_lab_teacher.py)."""

import hashlib
import json

import streamlit as st

from pages._ui import error_line, job_status, launch, models_for, render_result, runtime
from workbench.core.analyzer import get_analyzer
from workbench.core.errors import WorkbenchError
from workbench.core.labs import CORRECT, NOT_ANSWERED, WRONG, credit, grade
from workbench.report import render_report
from workbench.runtime.labs import labs, spec_for, student_lab

runtime()
st.title("Labs")
LABS = labs()
if not LABS:
    st.info("No lab files in labs/.")
    st.stop()
with st.sidebar:
    mode = st.radio("Mode", ["Student", "Teacher"], horizontal=True, key="lab.mode",
                    help="Teacher: a student's variant and answer key, and the summary of a graded class")
    score_box = st.empty()  # filled at the end of the script, after this run's answers were graded
    student = st.text_input("Your student id (your lab's numbers depend on it)", key="lab.student").strip()
lab_id = st.selectbox("Lab", list(LABS), format_func=lambda i: LABS[i].title)
if mode == "Teacher":
    from pages._lab_teacher import teacher_view

    teacher_view(LABS[lab_id])
    st.stop()

lab, variant = student_lab(LABS[lab_id], student or None)
tag = hashlib.sha256(json.dumps(variant, sort_keys=True, default=str).encode()).hexdigest()[:8]
state = st.session_state.setdefault(f"lab.{lab_id}", {})
if state.get("variant") != tag:  # a new student id means new numbers: start this lab afresh
    state.clear()
    state.update(variant=tag, step=0, answers={}, predictions={}, results={}, marks={}, attempts={}, points={})
policy = lab.attempts
st.caption(f"{lab.summary} · about {lab.minutes} minutes · {len(lab.steps)} steps · {lab.total_points:g} points"
           f" · up to {policy['max']} attempts per question; a correct answer at attempt k earns "
           f"max({policy['floor']:g}, 1 - {policy['penalty']:g} (k - 1)) of its points")
if variant:
    st.caption("Your variant: " + ", ".join(f"{k} = {v}" for k, v in variant.items())
               + ("" if student else " (the defaults: enter your student id in the sidebar)"))


def _score() -> float:
    return sum(state["points"].values())


def _tweaks(run) -> dict:
    analyzer = get_analyzer(run.analyzer)
    fields = analyzer.Config.__dataclass_fields__
    values = {}
    if "model" in run.tweak or run.own_model:  # any compatible card: uploads, `app --models` builders
        ids = [c.id for c in models_for(analyzer)]
        label = "Your model" if run.own_model else "Model"
        values["model"] = st.selectbox(label, ids, index=ids.index(run.model) if run.model in ids else 0,
                                       key=f"lab.{lab_id}.{run.id}.model")
    for name in [t for t in run.tweak if t != "model"]:
        f, key = fields[name], f"lab.{lab_id}.{run.id}.{name}"
        default = run.config.get(name, f.default)
        m = f.metadata
        values[name] = st.number_input(name.replace("_", " "), value=default, min_value=m.get("min"),
                                       max_value=m.get("max"), help=m["help"], key=key) \
            if isinstance(default, (int, float)) and not isinstance(default, bool) else \
            st.text_input(name.replace("_", " "), value=str(default), help=m["help"], key=key)
    return values


def _run_block(run, locked: bool) -> None:
    key = f"lab.{lab_id}.{tag}.{run.id}"
    where = "your own model" if run.own_model else f"`{run.model or '(built in)'}`"
    st.markdown(f"**Run `{run.id}`**: `{run.analyzer}` on {where}{' with ' + run.data if run.data else ''}")
    values = _tweaks(run)
    if st.button(f"Run {run.id}", key=f"btn.{key}", type="primary", disabled=locked,
                 help="Answer the prediction questions of this step first" if locked else None):
        launch(spec_for(run, values), key)
        st.rerun()
    result = job_status(key)
    if result is not None:
        state["results"][run.id] = result
        with st.expander(f"Result of {run.id}", expanded=True):
            render_result(result, key)


def _check(q, answer) -> None:
    try:
        ok, _ = grade(q, answer, state["results"])
    except WorkbenchError as e:
        error_line(e)
        return
    n = state["attempts"][q.id] = state["attempts"].get(q.id, 0) + 1
    state["answers"][q.id], state["marks"][q.id] = answer, ok
    state["points"][q.id] = credit(q.points, n, policy) if ok else 0.0


def _question(q, step_runs_done: bool) -> None:
    key = f"lab.{lab_id}.q.{q.id}"
    n, mark = state["attempts"].get(q.id, 0), state["marks"].get(q.id)
    closed = mark is True or n >= int(policy["max"]) or (q.predict and n >= 1)
    st.markdown(f"**{'Predict' if q.predict else 'Question'} ({q.points:g} pt):** {q.prompt}")
    if q.kind == "choice":
        given = st.radio(q.id, q.options, index=None, key=key, label_visibility="collapsed")
    elif q.kind == "ranking":
        given = ", ".join(st.multiselect("Pick in order, first = largest", q.options, key=key))
    elif q.kind == "property":
        given = "run"  # graded on the run's result itself
        st.caption("Graded on your run's result.")
    else:
        given = st.text_input("Your answer (a number)", key=key)
    if q.predict:
        if q.id in state["predictions"]:
            st.caption(f"Prediction recorded: {state['predictions'][q.id]}")
        elif st.button("Record prediction", key=f"pred.{key}", disabled=not given):
            state["predictions"][q.id] = given
            st.rerun()
        if not step_runs_done:
            return
    if st.button("Check answer", key=f"chk.{key}", disabled=closed or not (given or q.id in state["predictions"])):
        _check(q, state["predictions"].get(q.id, given) if q.predict else given)
        st.rerun()  # redraw with the new attempt count (the button closes after the last one)
    if q.id in state["marks"]:
        tries = f" (attempt {n} of {policy['max']}, {state['points'][q.id]:g} / {q.points:g} pt)"
        if mark:
            st.success("Correct." + tries, icon=":material/check_circle:")
        elif n >= int(policy["max"]) or q.predict:
            ref = grade(q, "", state["results"])[1] if step_runs_done else "?"
            st.error(f"Not quite{tries}. The answer was {ref}. Hint: {q.hint}", icon=":material/lightbulb:")
        else:
            st.error(f"Not quite{tries}. Hint: {q.hint}", icon=":material/lightbulb:")


i = min(state["step"], len(lab.steps) - 1)
step = lab.steps[i]
st.progress((i + 1) / len(lab.steps), text=f"Step {i + 1} of {len(lab.steps)}")
st.header(step.title)
st.markdown(step.text)
pending = [q for q in step.questions if q.predict and q.id not in state["predictions"]]
for run in step.runs:
    _run_block(run, locked=bool(pending))
done = all(r.id in state["results"] for r in step.runs)
for q in step.questions:
    _question(q, done)

prev, nxt = st.columns(2)
if prev.button("Previous step", disabled=i == 0):
    state["step"] = i - 1
    st.rerun()
if nxt.button("Next step", disabled=i == len(lab.steps) - 1, type="primary"):
    state["step"] = i + 1
    st.rerun()

score_box.metric("Score", f"{_score():g} / {lab.total_points:g}")
st.divider()


def _row(q) -> dict:
    marked = q.id in state["marks"]
    status = NOT_ANSWERED if not marked else CORRECT if state["marks"][q.id] else WRONG
    return {"question": q.id, "prompt": q.prompt, "prediction": state["predictions"].get(q.id, ""),
            "given": state["answers"].get(q.id, ""), "correct": status == CORRECT, "answered": marked,
            "status": status, "attempts": state["attempts"].get(q.id, 0),
            "reference": grade(q, "", state["results"])[1] if marked else "",
            "points": state["points"].get(q.id, 0.0), "of": q.points}


sheet = {"title": lab.title, "student": student, "score": _score(), "total": lab.total_points,
         "questions": [_row(q) for q in lab.questions]}
st.download_button("Download lab report", render_report(list(state["results"].values()), f"Lab: {lab.title}", sheet),
                   file_name=f"lab-{lab_id}.html", mime="text/html", icon=":material/download:")
