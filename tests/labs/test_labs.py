"""Every lab parses and names only real analyzers, models and data; reference answers come from real
runs and wrong answers are marked wrong; an AppTest walks one lab; the CLI grades an answers file."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.cli import main
from workbench.core.analyzer import get_analyzer
from workbench.core.cards import get_card
from workbench.core.config import from_dict
from workbench.core.errors import DataError
from workbench.core.labs import instantiate, parse_lab, variant_for
from workbench.data import get_samples
from workbench.report import render_report
from workbench.runtime.lab_grading import grade_folder
from workbench.runtime.labs import answer_key, check_answers, get_lab, labs, run_all, student_lab

ROOT = Path(__file__).resolve().parents[2]


def _variants(lab):
    """The defaults, then every choice of every parameter (the others at their defaults), smoke or not."""
    base = variant_for(lab, None)
    yield base, False
    for name, d in lab.variant.items():
        for v in d.get("choose") or d["range"]:
            yield {**base, name: v}, True


@pytest.mark.parametrize("lab_id", sorted(labs()))
def test_lab_names_only_existing_things(lab_id):
    lab = get_lab(lab_id)
    assert lab.questions and lab.runs and lab.total_points > 0
    for values, smoke in _variants(lab):
        mine = instantiate(lab, values, smoke)
        for r in mine.runs.values():
            analyzer = get_analyzer(r.analyzer)
            from_dict(analyzer.Config, r.config)  # the preset is a valid configuration
            assert set(r.tweak) - {"model"} <= set(analyzer.Config.__dataclass_fields__)
            assert set(r.require) <= set(r.config) and not re.search(r"\{\w+\}", json.dumps(r.config))
            if r.model and not r.own_model:
                get_card(r.model)
            if r.data and ":" in r.data:
                get_samples(r.data)
        for q in mine.questions:
            ref_run = q.answer.split(":")[1] if not q.answer.startswith("value:") else None
            assert ref_run is None or ref_run in mine.runs, f"{q.id} refers to unknown run {ref_run}"
            if q.kind == "choice" and q.answer.startswith("value:"):
                assert q.answer[6:] in q.options
            assert q.kind != "property" or mine.runs[ref_run].own_model, f"{q.id}: property of a lab run"


def test_malformed_lab_files_are_refused_with_the_step_named():
    with pytest.raises(DataError, match="header"):
        parse_lab("no header", "x")
    with pytest.raises(DataError, match="step 'S'"):
        parse_lab('---\n{"title": "t"}\n---\n## S\n```lab\n{"run": \n```\n', "x")
    with pytest.raises(DataError, match="not declared"):
        parse_lab('---\n{"title": "t"}\n---\n## S\n```lab\n{"run": {"id": "r", "analyzer": "lrp", '
                  '"data": "digits:{sample}", "config": {}}}\n```\n', "x")
    with pytest.raises(DataError, match="choose"):
        parse_lab('---\n{"title": "t", "variant": {"k": [1, 2]}}\n---\n## S\n', "x")
    with pytest.raises(DataError, match="expect"):
        parse_lab('---\n{"title": "t"}\n---\n## S\n```lab\n{"question": {"id": "q", "kind": "property", '
                  '"prompt": "p", "answer": "check:own:x"}}\n```\n', "x")
    with pytest.raises(DataError, match="kind"):
        parse_lab('---\n{"title": "t"}\n---\n## S\n```lab\n{"question": {"id": "q", "kind": "essay", '
                  '"prompt": "p", "answer": "value:1"}}\n```\n', "x")


@pytest.mark.zoo("digits_vgg.sk", "efficientnet_lite0.imagenet")
def test_reference_answers_come_from_runs_and_wrong_answers_are_wrong(lab_cache):
    lab = get_lab("attribution")
    results = run_all(lab, cache=lab_cache)  # no student: the lab's defaults (64 steps, digits:21)
    right = {"predict_steps": "64 steps", "gap64": results["ig64"].metrics["completeness_gap"],
             "control_check": "fail", "cat_class": results["cat"].info["target_names"][0],
             "rank_sanity": check_answers(lab, {}, results)["questions"][2]["reference"]}
    good = check_answers(lab, right, results)
    assert good["score"] == good["total"] == lab.total_points
    wrong = {"predict_steps": "4 steps", "gap64": 0.5, "control_check": "pass", "cat_class": "espresso",
             "rank_sanity": ", ".join(reversed(right["rank_sanity"].split(", ")))}
    assert check_answers(lab, wrong, results)["score"] == 0


@pytest.mark.zoo("digits_vgg.sk", "efficientnet_lite0.imagenet")
def test_cli_lab_list_and_check(tmp_path, capsys):
    assert main(["lab", "list", "--json"]) == 0
    assert "attribution" in {r["id"] for r in json.loads(capsys.readouterr().out)}
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"control_check": "fail", "cat_class": "espresso"}))
    assert main(["lab", "check", "attribution", "--answers", str(answers)]) == 0
    graded = {q["question"]: q["status"] for q in json.loads(capsys.readouterr().out)["questions"]}
    assert graded["control_check"] == "correct" and graded["cat_class"] == "wrong"
    assert graded["gap64"] == "not answered"  # unanswered is not "wrong"
    assert main(["lab", "check", "nope", "--answers", str(answers)]) == 2
    assert "no lab" in capsys.readouterr().err


def _wait(at: AppTest, cond, seconds=180):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    return cond()


@pytest.mark.zoo("digits_vgg.sk", "efficientnet_lite0.imagenet")
def test_apptest_walks_the_attribution_lab_to_the_end():
    at = AppTest.from_file(str(ROOT / "workbench" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("../pages/labs.py")
    at.run()
    assert not at.exception and at.title[0].value == "Labs"
    lab = student_lab(get_lab(at.selectbox[0].value), None)[0]  # no student id: the lab's defaults
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
            for _ in range(int(lab.attempts["max"]) if q.kind == "number" else 1):  # retry a wrong number
                next(b for b in at.button if b.key == f"chk.lab.{lab.id}.q.{q.id}").click().run()
            if q.kind == "number":
                assert next(b for b in at.button if b.key == f"chk.lab.{lab.id}.q.{q.id}").disabled
                assert any(f"attempt {lab.attempts['max']} of {lab.attempts['max']}" in e.value and
                           "The answer was" in e.value for e in at.error)
        assert not at.exception, [e.value for e in at.exception]
        if i < len(lab.steps) - 1:
            next(b for b in at.button if b.label == "Next step").click().run()
    state = at.session_state[f"lab.{lab.id}"]
    assert len(state["results"]) == len(lab.runs) and state["marks"]
    gap = next(q for q in lab.questions if q.kind == "number")
    assert state["attempts"][gap.id] == lab.attempts["max"] and state["points"][gap.id] == 0
    assert next(q for q in lab.questions if q.kind == "ranking").id not in state["marks"]  # not answered
    score = next(m for m in at.metric if m.label == "Score")
    assert score.value == f"{sum(state['points'].values()):g} / {lab.total_points:g}"


@pytest.mark.zoo("digits_vgg.sk", "efficientnet_lite0.imagenet")
def test_apptest_teacher_view_shows_variant_key_and_class(tmp_path, lab_cache):
    lab = get_lab("attribution")
    subs = tmp_path / "subs"
    subs.mkdir()
    for s in ("ada", "bob", "cy"):
        key = answer_key(lab, s, cache=lab_cache)["answers"]
        if s != "ada":
            key["control_check"] = "pass"  # planted: the most missed question
        (subs / f"{s}.json").write_text(json.dumps({"student": s, "answers": key}))
    grade_folder(lab, subs, tmp_path / "grades", cache=lab_cache, log=lambda line: None)
    at = AppTest.from_file(str(ROOT / "workbench" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("../pages/labs.py")
    at.run()
    at.radio(key="lab.mode").set_value("Teacher").run()
    at.text_input(key="labkey.attribution.student").set_value("ada").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(variant_for(lab, "ada") == j.value or json.dumps(variant_for(lab, "ada")) in str(j.value)
               for j in at.json)
    next(b for b in at.button if b.label.startswith("Compute the answer key")).click().run()
    assert _wait(at, lambda: len(at.dataframe) > 0), "the key did not appear"
    shown = {r["question"]: r["key"] for r in at.dataframe[0].value.to_dict("records")}
    want = answer_key(lab, "ada", cache=lab_cache)["answers"]
    assert shown["gap64"] == str(want["gap64"]) and shown["control_check"] == want["control_check"]
    at.text_input(key="labclass.attribution").set_value(str(tmp_path / "grades")).run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Graded"] == "3" and metrics["Most missed"] == "control_check"


def test_lab_sheet_says_not_answered_and_shows_attempts():
    row = {"prompt": "p", "prediction": "", "given": "", "reference": "", "correct": False, "points": 0, "of": 1}
    sheet = {"title": "T", "student": "s", "score": 0.75, "total": 3, "questions": [
        {**row, "answered": False, "attempts": 0},
        {**row, "given": "x", "reference": "x", "correct": True, "answered": True, "attempts": 2, "points": 0.75},
        {**row, "given": "y", "reference": "x"}]}  # a sheet from before attempts were counted
    html = render_report([], "lab", sheet)
    marks = re.findall(r'<td class="(?:pass|fail|)">([a-z ]+)</td>', html)
    assert marks == ["not answered", "correct", "wrong"] and "0.75 / 1 (2 attempts)" in html
