"""Every lab parses and names only real analyzers, models and data; reference answers come from real
runs and wrong answers are marked wrong; an AppTest walks one lab; the CLI grades an answers file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.core.analyzer import get_analyzer
from workbench.core.cards import get_card
from workbench.core.config import from_dict
from workbench.core.errors import DataError
from workbench.core.labs import parse_lab
from workbench.data import get_samples
from workbench.runtime.labs import check_answers, get_lab, labs, run_all

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lab_id", sorted(labs()))
def test_lab_names_only_existing_things(lab_id):
    lab = get_lab(lab_id)
    assert lab.questions and lab.runs and lab.total_points > 0
    for r in lab.runs.values():
        analyzer = get_analyzer(r.analyzer)
        from_dict(analyzer.Config, r.config)  # the preset is a valid configuration
        assert set(r.tweak) - {"model"} <= set(analyzer.Config.__dataclass_fields__)
        if r.model:
            get_card(r.model)
        if r.data and ":" in r.data:
            get_samples(r.data)
    for q in lab.questions:
        ref_run = q.answer.split(":")[1] if not q.answer.startswith("value:") else None
        assert ref_run is None or ref_run in lab.runs, f"{q.id} refers to unknown run {ref_run}"
        if q.kind == "choice" and q.answer.startswith("value:"):
            assert q.answer[6:] in q.options


def test_malformed_lab_files_are_refused_with_the_step_named():
    with pytest.raises(DataError, match="header"):
        parse_lab("no header", "x")
    with pytest.raises(DataError, match="step 'S'"):
        parse_lab('---\n{"title": "t"}\n---\n## S\n```lab\n{"run": \n```\n', "x")
    with pytest.raises(DataError, match="kind"):
        parse_lab('---\n{"title": "t"}\n---\n## S\n```lab\n{"question": {"id": "q", "kind": "essay", '
                  '"prompt": "p", "answer": "value:1"}}\n```\n', "x")


@pytest.mark.zoo("digits_vgg.sk")
def test_reference_answers_come_from_runs_and_wrong_answers_are_wrong():
    lab = get_lab("attribution")
    results = run_all(lab)
    right = {"predict_steps": "64 steps", "gap64": results["ig64"].metrics["completeness_gap"],
             "control_check": "fail", "cat_class": results["cat"].info["target_names"][0],
             "rank_sanity": check_answers(lab, {}, results)["questions"][2]["reference"]}
    good = check_answers(lab, right, results)
    assert good["score"] == good["total"] == lab.total_points
    wrong = {"predict_steps": "4 steps", "gap64": 0.5, "control_check": "pass", "cat_class": "espresso",
             "rank_sanity": ", ".join(reversed(right["rank_sanity"].split(", ")))}
    assert check_answers(lab, wrong, results)["score"] == 0


@pytest.mark.zoo("digits_vgg.sk")
def test_cli_lab_list_and_check(tmp_path):
    p = subprocess.run([sys.executable, "-m", "workbench.cli", "lab", "list", "--json"], capture_output=True,
                       text=True, timeout=120)
    assert "attribution" in {r["id"] for r in json.loads(p.stdout)}
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"control_check": "fail", "cat_class": "espresso"}))
    p = subprocess.run([sys.executable, "-m", "workbench.cli", "lab", "check", "attribution", "--answers",
                        str(answers)], capture_output=True, text=True, timeout=600)
    graded = {q["question"]: q["correct"] for q in json.loads(p.stdout)["questions"]}
    assert graded["control_check"] is True and graded["cat_class"] is False and graded["gap64"] is False
    bad = subprocess.run([sys.executable, "-m", "workbench.cli", "lab", "check", "nope", "--answers", str(answers)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no lab" in bad.stderr


def _wait(at: AppTest, cond, seconds=180):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    return cond()


@pytest.mark.zoo("digits_vgg.sk")
def test_apptest_walks_the_attribution_lab_to_the_end():
    at = AppTest.from_file(str(ROOT / "workbench" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("../pages/labs.py")
    at.run()
    assert not at.exception and at.title[0].value == "Labs"
    lab = get_lab(at.selectbox[0].value)
    for i, step in enumerate(lab.steps):
        for q in [q for q in step.questions if q.predict]:
            at.radio(key=f"lab.{lab.id}.q.{q.id}").set_value(q.options[1]).run()
            next(b for b in at.button if b.label == "Record prediction").click().run()
        for r in step.runs:
            next(b for b in at.button if b.label == f"Run {r.id}").click().run()
            assert _wait(at, lambda r=r: r.id in at.session_state[f"lab.{lab.id}"]["results"] or
                         any(f"Result of {r.id}" in e.label for e in at.expander)), f"run {r.id} did not finish"
        for q in step.questions:
            if q.kind == "choice" and not q.predict:
                at.radio(key=f"lab.{lab.id}.q.{q.id}").set_value(q.options[0]).run()
            elif q.kind == "number":
                at.text_input(key=f"lab.{lab.id}.q.{q.id}").set_value("0.5").run()
            elif q.kind == "ranking":
                continue
            next(b for b in at.button if b.label == "Check answer" and not b.disabled).click().run()
        assert not at.exception, [e.value for e in at.exception]
        if i < len(lab.steps) - 1:
            next(b for b in at.button if b.label == "Next step").click().run()
    state = at.session_state[f"lab.{lab.id}"]
    assert len(state["results"]) == len(lab.runs) and state["marks"]
    score = next(m for m in at.metric if m.label == "Score")
    assert score.value.endswith(f"/ {lab.total_points:g}")
