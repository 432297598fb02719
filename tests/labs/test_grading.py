"""Batch grading (the issue's done-when): 30 generated submissions, half right and half with errors planted at
known questions (two of them with extra attempts), plus two malformed files; `workbench lab grade` writes a
gradebook CSV and Gradescope results whose totals match the plan exactly. The teacher's variant and key
commands, and a bad lab id, through the same entry point."""

from __future__ import annotations

import csv
import json

import pytest

from workbench.cli import main
from workbench.core.labs import credit, variant_for
from workbench.runtime.lab_grading import class_summary, grade_folder, write_exports
from workbench.runtime.labs import RunCache, answer_key, get_lab, student_lab

LAB = "attribution"


def _plant(lab, students, cache):
    """Submissions and the expected points per student and question. Student i < 15 answers right; the others
    get wrong answers at questions chosen by i (a known plan), students 28 and 29 use 2 and 3 attempts."""
    subs, expected = {}, {}
    for i, s in enumerate(students):
        key = answer_key(lab, s, cache=cache)["answers"]
        qs = student_lab(lab, s)[0].questions
        wrong = set() if i < 15 else {qs[i % len(qs)].id, qs[(i * 3 + 1) % len(qs)].id}
        tries = {q.id: 2 if i == 28 else 3 for q in qs} if i >= 28 else {}
        answers = {}
        for q in qs:
            ref = key[q.id]
            if q.id not in wrong:
                answers[q.id] = ref
            elif q.kind == "number":
                answers[q.id] = float(ref) * 3 + 0.01
            elif q.kind == "ranking":
                answers[q.id] = ", ".join(reversed(ref.split(", ")))
            else:
                answers[q.id] = next(o for o in q.options if o != ref)
        if i == 20:
            answers.pop(qs[0].id)  # not answered: no points, no error
            wrong.add(qs[0].id)
        subs[s] = {"student": s, "answers": answers, **({"attempts": tries} if tries else {})}
        expected[s] = {q.id: 0.0 if q.id in wrong else credit(q.points, tries.get(q.id, 1), lab.attempts)
                       for q in qs}
    return subs, expected


@pytest.mark.zoo("digits_vgg.sk", "efficientnet_lite0.imagenet")
def test_grading_30_generated_submissions_matches_the_plan(tmp_path, capsys):
    lab = get_lab(LAB)
    students = [f"stu{i:02d}" for i in range(30)]
    assert len({tuple(variant_for(lab, s).values()) for s in students}) > 5
    cache = RunCache(tmp_path / "cache")
    subs, expected = _plant(lab, students, cache)
    folder = tmp_path / "subs"
    folder.mkdir()
    for s, doc in subs.items():
        (folder / f"{s}.json").write_text(json.dumps(doc))
    (folder / "broken.json").write_text('{"student": "zz", "answers": ')
    (folder / "anonymous.json").write_text(json.dumps({"answers": {"gap64": 0.1}}))
    out = tmp_path / "grades"
    rc = main(["lab", "grade", LAB, "--submissions", str(folder), "--out", str(out), "--csv", "--gradescope",
               "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "[32/32]" in err and "broken: ERROR not valid JSON" in err and "anonymous: ERROR" in err
    assert "runs computed 0," in err  # every run came from the teacher's cache: nothing ran twice

    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert set(rows) == set(students) | {"broken", "anonymous"}
    assert rows["broken"]["error"] and rows["anonymous"]["error"].startswith('"student"')
    for s in students:
        assert float(rows[s]["total"]) == pytest.approx(sum(expected[s].values()), abs=1e-9), s
        assert {q: float(rows[s][q]) for q in expected[s]} == pytest.approx(expected[s]), s
        assert rows[s]["error"] == "" and float(rows[s]["max"]) == lab.total_points
        gs = json.loads((out / "gradescope" / s / "results.json").read_text())
        assert gs["score"] == pytest.approx(sum(expected[s].values()), abs=1e-9)
        assert sum(t["score"] for t in gs["tests"]) == pytest.approx(gs["score"])
        assert sum(t["max_score"] for t in gs["tests"]) == lab.total_points
        assert {t["visibility"] for t in gs["tests"]} == {"visible"}
    assert sum(float(rows[s]["total"]) == lab.total_points for s in students) == 15
    assert json.loads((out / "gradescope" / "broken" / "results.json").read_text())["score"] == 0
    status = {q["question"]: q["status"] for q in json.loads((out / "stu20.json").read_text())["questions"]}
    assert status[lab.questions[0].id] == "not answered"

    summary = class_summary(out)  # what the teacher's page shows
    assert len(summary["scores"]) == 30 and summary["errors"][0][0] in ("anonymous", "broken")
    missed = {q.id: sum(expected[s][q.id] == 0 for s in students) for q in lab.questions}
    assert summary["missed"] == missed and summary["most_missed"] == max(missed, key=missed.get)


def test_variant_key_and_bad_lab_commands(capsys):
    assert main(["lab", "variant", "lrp", "--student", "ada"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["variant"] == variant_for(get_lab("lrp"), "ada") and doc["student"] == "ada"
    assert main(["lab", "grade", "nope", "--submissions", ".", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "no lab 'nope'" in err and err.count("\n") == 1


@pytest.mark.zoo("digits_vgg.sk", "efficientnet_lite0.imagenet")
def test_key_command_prints_the_students_own_reference(capsys, lab_cache):
    assert main(["lab", "key", LAB, "--student", "ada"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(answer_key(get_lab(LAB), "ada", cache=lab_cache)))
    assert printed["variant"] == variant_for(get_lab(LAB), "ada")
    assert printed["answers"] != answer_key(get_lab(LAB), "cy", cache=lab_cache)["answers"]


@pytest.mark.zoo("digits_vgg.sk", "digits_resnet.sk")
def test_one_submission_is_gradescopes_autograder_case(tmp_path, lab_cache):
    """Gradescope grades one student at a time: OUT/results.json is that student's, in its schema."""
    lab = get_lab("lrp")
    sub = tmp_path / "submission"
    sub.mkdir()
    key = answer_key(lab, "s00", smoke=True, cache=lab_cache)["answers"]
    (sub / "answers.json").write_text(json.dumps({"student": "s00", "answers": key, "attempts": {"closes": 2}}))
    rows = grade_folder(lab, sub, tmp_path / "out", smoke=True, cache=lab_cache, log=lambda line: None)
    write_exports(lab, rows, tmp_path / "out", csv_out=False, gradescope=True)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(doc) >= {"score", "tests"} and doc["score"] == lab.total_points - 0.25
    for t in doc["tests"]:
        assert set(t) >= {"name", "score", "max_score", "visibility"} and t["visibility"] == "visible"
    assert [t["max_score"] for t in doc["tests"]] == [q.points for q in lab.questions]
