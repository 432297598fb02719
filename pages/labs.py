"""Labs: step through a teaching lab, run its analyses, answer, see the score, export the lab sheet."""

import streamlit as st

from pages._ui import error_line, job_status, launch, models_for, render_result, runtime
from workbench.core.analyzer import get_analyzer
from workbench.core.errors import WorkbenchError
from workbench.core.labs import grade
from workbench.report import render_report
from workbench.runtime.labs import labs, spec_for

runtime()
st.title("Labs")
LABS = labs()
if not LABS:
    st.info("No lab files in labs/.")
    st.stop()
lab_id = st.selectbox("Lab", list(LABS), format_func=lambda i: LABS[i].title)
lab = LABS[lab_id]
state = st.session_state.setdefault(f"lab.{lab_id}", {"step": 0, "answers": {}, "predictions": {},
                                                       "results": {}, "marks": {}})
st.caption(f"{lab.summary} · about {lab.minutes} minutes · {len(lab.steps)} steps · {lab.total_points:g} points")


def _score() -> float:
    return sum(q.points for q in lab.questions if state["marks"].get(q.id))


def _tweaks(run) -> dict:
    analyzer = get_analyzer(run.analyzer)
    fields = analyzer.Config.__dataclass_fields__
    values = {}
    if "model" in run.tweak:  # any compatible card, including weights the student uploaded on the zoo page
        ids = [c.id for c in models_for(analyzer)]
        values["model"] = st.selectbox("Model", ids, index=ids.index(run.model) if run.model in ids else 0,
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
    key = f"lab.{lab_id}.{run.id}"
    st.markdown(f"**Run `{run.id}`**: `{run.analyzer}` on `{run.model or '(built in)'}`"
                f"{' with ' + run.data if run.data else ''}")
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


def _question(q, step_runs_done: bool) -> None:
    key = f"lab.{lab_id}.q.{q.id}"
    st.markdown(f"**{'Predict' if q.predict else 'Question'} ({q.points:g} pt):** {q.prompt}")
    if q.kind == "choice":
        given = st.radio(q.id, q.options, index=None, key=key, label_visibility="collapsed")
    elif q.kind == "ranking":
        given = ", ".join(st.multiselect("Pick in order, first = largest", q.options, key=key))
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
    if st.button("Check answer", key=f"chk.{key}", disabled=not (given or q.id in state["predictions"])):
        answer = state["predictions"].get(q.id, given) if q.predict else given
        try:
            ok, ref = grade(q, answer, state["results"])
        except WorkbenchError as e:
            error_line(e)
            return
        state["answers"][q.id], state["marks"][q.id] = answer, ok
    if q.id in state["marks"]:
        if state["marks"][q.id]:
            st.success("Correct.", icon=":material/check_circle:")
        else:
            st.error(f"Not quite. Hint: {q.hint}", icon=":material/lightbulb:")


with st.sidebar:
    score_box = st.empty()  # filled at the end of the script, after this run's answers were graded
    student = st.text_input("Your name (for the lab sheet)", key="lab.student")

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
rows = [{"question": q.id, "prompt": q.prompt, "prediction": state["predictions"].get(q.id, ""),
         "given": state["answers"].get(q.id, ""), "correct": bool(state["marks"].get(q.id)),
         "reference": grade(q, "", state["results"])[1] if q.id in state["marks"] else "",
         "points": q.points if state["marks"].get(q.id) else 0, "of": q.points} for q in lab.questions]
sheet = {"title": lab.title, "student": student, "score": _score(), "total": lab.total_points, "questions": rows}
st.download_button("Download lab report", render_report(list(state["results"].values()), f"Lab: {lab.title}", sheet),
                   file_name=f"lab-{lab_id}.html", mime="text/html", icon=":material/download:")
