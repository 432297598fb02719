"""Per-student variants: every lab, answered right and wrong by two students whose variants differ, graded
against each student's own runs (small smoke configurations, one shared run cache); copying a classmate's
right answers loses points; the own-model lab grades the student's own analysis."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.core.labs import Lab, credit, student_seed, variant_for
from workbench.runtime.labs import answer_key, check_answers, get_lab, labs, student_lab


def two_students(lab: Lab) -> tuple[str, str]:
    """The first two ids (s00, s01, ...) whose variants differ in every parameter: no run needed."""
    ids = [f"s{i:02d}" for i in range(200)]
    first = variant_for(lab, ids[0])
    return ids[0], next(s for s in ids[1:] if all(variant_for(lab, s)[k] != v for k, v in first.items()))


def wrong_answer(q, ref):
    if q.kind == "number":  # beyond any tolerance the question allows
        return float(ref) + max(1.0, 10 * abs(float(ref))) + 2 * float(q.tolerance.get("abs", 0))
    if q.kind == "ranking":
        return ", ".join(reversed(str(ref).split(", ")))
    return next(o for o in q.options if o != ref)


def test_the_variant_seed_is_sha256_of_lab_and_student_and_defaults_without_a_student():
    lab = get_lab("lrp")
    assert student_seed("lrp", "ada") == int(hashlib.sha256(b"lrp:ada").hexdigest()[:16], 16)
    assert variant_for(lab, "ada") == variant_for(lab, "ada")
    assert variant_for(lab, None) == {"sample": 21, "rate": 30} == variant_for(lab, "")
    seen = {tuple(variant_for(lab, f"s{i}").values()) for i in range(60)}
    assert len(seen) > 6  # the ids spread over the declared choices
    for values in seen:
        assert values[0] in lab.variant["sample"]["choose"] and values[1] in lab.variant["rate"]["choose"]
    mine, values = student_lab(lab, "ada")
    assert mine.runs["prune"].config["rates"] == f"20,{values['rate']}"
    assert mine.runs["ledger"].data == f"digits:{values['sample']}"
    assert f"{values['rate']}%" in next(q for q in mine.questions if q.id == "best40").prompt


def test_partial_credit_per_attempt():
    policy = {"max": 3, "penalty": 0.25, "floor": 0.5}
    assert [credit(2.0, k, policy) for k in (1, 2, 3, 4)] == [2.0, 1.5, 1.0, 1.0]


@pytest.mark.zoo("digits_vgg.sk", "digits_resnet.sk", "eeg_compact.synth", "sr_cnn.x2", "mnist1d_cnn.default")
@pytest.mark.parametrize("lab_id", sorted(set(labs()) - {"your_model"}))
def test_every_lab_right_and_wrong_for_two_students(lab_id, lab_cache):
    lab = get_lab(lab_id)
    a, b = two_students(lab)
    keys = {s: answer_key(lab, s, smoke=True, cache=lab_cache)["answers"] for s in (a, b)}
    mine = student_lab(lab, a, smoke=True)[0]
    numbers = [q.id for q in mine.questions if q.kind == "number"]
    assert any(keys[a][q] != keys[b][q] for q in numbers), f"{lab_id}: both students get the same numbers"
    for s in (a, b):
        qs = student_lab(lab, s, smoke=True)[0].questions
        right = check_answers(lab, keys[s], student=s, smoke=True, cache=lab_cache)
        assert right["score"] == right["total"] == lab.total_points, right
        assert {r["status"] for r in right["questions"]} == {"correct"}
        wrong = {q.id: wrong_answer(q, keys[s][q.id]) for q in qs}
        graded = check_answers(lab, wrong, student=s, smoke=True, cache=lab_cache)
        assert graded["score"] == 0 and {r["status"] for r in graded["questions"]} == {"wrong"}, graded
        empty = check_answers(lab, {}, student=s, smoke=True, cache=lab_cache)
        assert empty["score"] == 0 and {r["status"] for r in empty["questions"]} == {"not answered"}
    copied = check_answers(lab, keys[a], student=b, smoke=True, cache=lab_cache)
    assert copied["score"] < copied["total"], f"{lab_id}: {a}'s answers pass as {b}'s"


def _own_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10))


def test_the_own_model_lab_grades_the_students_own_analysis():
    lab = get_lab("your_model")
    a, b = two_students(lab)
    x = np.random.default_rng(0).random((2, 1, 8, 8)).astype("float32")
    model = _own_cnn()
    own = {s: wb.run("lrp", model=model, data=x, composite=variant_for(lab, s)["composite"]) for s in (a, b)}
    assert own[a].metrics["positive_fraction"] != own[b].metrics["positive_fraction"]
    for s in (a, b):
        right = {"own_positive": own[s].metrics["positive_fraction"],
                 "own_absorbed": round(own[s].metrics["bias_absorbed_fraction"], 3)}
        good = check_answers(lab, right, student=s, own={"own": own[s]})
        assert good["score"] == good["total"] == lab.total_points and not good["notes"], good
        misread = check_answers(lab, {"own_positive": 1.5, "own_absorbed": -1}, student=s, own={"own": own[s]})
        assert misread["score"] == 3  # the analysis (2 + 1) holds, the two numbers read are wrong
        assert [r["status"] for r in misread["questions"]] == ["correct", "correct", "wrong", "wrong"]
    other = check_answers(lab, {"own_positive": own[b].metrics["positive_fraction"]}, student=a, own={"own": own[b]})
    assert other["score"] == 0 and "composite" in other["notes"][0]  # made with the classmate's composite
    assert {r["status"] for r in other["questions"]} == {"not answered"}
    blind = wb.run("lrp", model=model, data=x, composite=variant_for(lab, a)["composite"], sanity_check=False)
    graded = {r["question"]: r["status"] for r in check_answers(lab, {}, student=a, own={"own": blind})["questions"]}
    assert graded == {"own_closes": "correct", "own_random": "wrong", "own_positive": "not answered",
                      "own_absorbed": "not answered"}
    with torch.no_grad():  # the student's module was used through a private copy
        assert torch.equal(model[0].weight, _own_cnn()[0].weight)
