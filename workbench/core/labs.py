"""Teaching labs as data: parse a lab file and grade answers against analyzer results.

A lab is one Markdown file in ``labs/``: a JSON header between ``---`` lines, then steps, each a
``## `` heading with Markdown text and optional fenced ```` ```lab ```` JSON blocks:

  {"run": {"id": "ig", "analyzer": "attribution", "model": "digits_vgg.sk", "data": "digits:21",
           "config": {...}, "tweak": ["n_steps"]}}
  {"question": {"id": "q1", "kind": "number|choice|ranking", "prompt": "...", "answer": EXPR,
                "tolerance": {"abs": 0.01} | {"rel": 0.1}, "options": [...], "points": 1,
                "hint": "...", "predict": false}}

A question with ``"predict": true`` is asked before the run it refers to and compared afterwards.
``tweak`` lists config fields the student may change; ``"model"`` in it lets the student pick any
compatible zoo card instead, including weights they uploaded.
Answer expressions read a run's result: ``metric:RUN:NAME`` (a number), ``check:RUN:NAME`` ("pass" or
"fail"), ``failing:RUN:PREFIX`` (the sorted names after PREFIX of failing checks, joined by ", "),
``rank:RUN:M1,M2,...`` (the metrics' names after their common prefix, largest first),
``top:RUN:M1,M2,...`` (the full name of the largest of those metrics),
``info:RUN:KEY`` (a text the analyzer stored, the first one of a list), or ``value:X``.
Adding a lab needs no Python code.

**Per-student variants.** The header may declare ``"variant": {NAME: {"choose": [...]} | {"range": [LO, HI]}}``
(optional ``"default"``). A student's parameters come from ``seed = sha256(lab id + ":" + student id)``;
each NAME draws from ``sha256(seed + ":" + NAME)``, so adding a parameter leaves the others unchanged.
Without a student id every parameter takes its default (``"default"``, else the first choice / LO).
``{NAME}`` in a run's model, data, config, seed or in a question's prompt, options, answer and hint is
replaced by the student's value (a whole-string ``"{NAME}"`` keeps the value's type), so the reference
answers are computed from the student's own runs. A run's ``"smoke"`` dict holds small config overrides
used only in smoke mode (tests, trying the grading pipeline); they must not touch varied fields.

**Runs on the student's own model.** ``"model": "@yours"`` marks a run the student makes on their own
network (``workbench.api.run(..., model=my_cnn)``, then ``result.save(DIR)``); the lab runs nothing for it.
Questions of kind ``property`` grade such an analysis rather than a fixed number: the answer expression is
evaluated on the student's result and compared with ``"expect"`` (a text such as ``"pass"``, or
``{"min": A, "max": B}`` for a number). A run's ``"require"`` lists config values the student's result must
have been made with (after variant substitution); a result that differs is "not answered".

**Attempts and partial credit.** The header's ``"attempts": {"max": 3, "penalty": 0.25, "floor": 0.5}``
(these defaults when absent): attempt k (1-based) of a question earns
``points * max(floor, 1 - penalty * (k - 1))`` when correct; after ``max`` wrong attempts the question is
closed and shows the reference. An unanswered question scores 0 and is marked "not answered", not "wrong".
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from workbench.core.errors import DataError

_FENCE = re.compile(r"```lab\s*\n(.*?)\n```", re.S)
KINDS = ("number", "choice", "ranking", "property")
OWN_MODEL = "@yours"
ATTEMPTS = {"max": 3, "penalty": 0.25, "floor": 0.5}
NOT_ANSWERED, CORRECT, WRONG = "not answered", "correct", "wrong"


@dataclass
class Question:
    id: str
    kind: str
    prompt: str
    answer: str
    points: float = 1.0
    tolerance: dict = field(default_factory=dict)
    options: list = field(default_factory=list)
    hint: str = ""
    predict: bool = False
    expect: object = None


@dataclass
class LabRun:
    id: str
    analyzer: str
    model: str | None
    data: str | None
    config: dict
    tweak: list = field(default_factory=list)
    seed: int | str = 0
    smoke: dict = field(default_factory=dict)
    require: list = field(default_factory=list)

    @property
    def own_model(self) -> bool:
        return self.model == OWN_MODEL


@dataclass
class Step:
    title: str
    text: str
    runs: list[LabRun] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


@dataclass
class Lab:
    id: str
    title: str
    summary: str
    steps: list[Step]
    minutes: int = 20
    variant: dict = field(default_factory=dict)
    attempts: dict = field(default_factory=lambda: dict(ATTEMPTS))

    @property
    def questions(self) -> list[Question]:
        return [q for s in self.steps for q in s.questions]

    @property
    def runs(self) -> dict[str, LabRun]:
        return {r.id: r for s in self.steps for r in s.runs}

    @property
    def total_points(self) -> float:
        return sum(q.points for q in self.questions)


def _block(raw: str, where: str) -> dict:
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: a lab block is not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(doc, dict) or len(doc) != 1 or next(iter(doc)) not in ("run", "question"):
        raise DataError(f"{where}: a lab block must be {{\"run\": ...}} or {{\"question\": ...}}")
    return doc


def _run(r: dict, where: str) -> LabRun:
    try:
        return LabRun(r["id"], r["analyzer"], r.get("model"), r.get("data"), dict(r.get("config", {})),
                      list(r.get("tweak", [])), r.get("seed", 0), dict(r.get("smoke", {})),
                      list(r.get("require", [])))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: a run block lacks or mistypes {e}") from None


def _question(q: dict, where: str) -> Question:
    try:
        question = Question(**q)
    except TypeError as e:
        raise DataError(f"{where}: a question block is malformed ({e})") from None
    if question.kind not in KINDS:
        raise DataError(f"{where}: question {question.id} has kind {question.kind!r}, not one of {KINDS}")
    if question.kind == "property" and question.expect is None:
        raise DataError(f"{where}: property question {question.id} needs \"expect\"")
    return question


def _check_variant(spec: dict, lab_id: str) -> dict:
    for name, d in spec.items():
        ok = isinstance(d, dict) and (isinstance(d.get("choose"), list) and d["choose"] or
                                      isinstance(d.get("range"), list) and len(d["range"]) == 2)
        if not (ok and re.fullmatch(r"\w+", name)):
            raise DataError(f"lab {lab_id}: variant parameter {name!r} must be {{\"choose\": [...]}} "
                            "or {\"range\": [lo, hi]}")
    return spec


def parse_lab(text: str, lab_id: str) -> Lab:
    """Parse a lab file's text. Raises DataError naming the step on a malformed file."""
    parts = text.split("---", 2)
    if len(parts) < 3 or parts[0].strip():
        raise DataError(f"lab {lab_id}: the file must start with a JSON header between --- lines")
    try:
        header = json.loads(parts[1])
    except json.JSONDecodeError as e:
        raise DataError(f"lab {lab_id}: the header is not valid JSON ({e.msg})") from None
    steps = []
    for chunk in re.split(r"^## ", parts[2], flags=re.M)[1:]:
        title, _, body = chunk.partition("\n")
        step = Step(title.strip(), _FENCE.sub("", body).strip())
        where = f"lab {lab_id}, step '{step.title}'"
        for raw in _FENCE.findall(body):
            doc = _block(raw, where)
            if "run" in doc:
                step.runs.append(_run(doc["run"], where))
            else:
                step.questions.append(_question(doc["question"], where))
        steps.append(step)
    if not steps:
        raise DataError(f"lab {lab_id} has no steps (## headings)")
    variant = _check_variant(dict(header.get("variant", {})), lab_id)
    for r in (r for s in steps for r in s.runs):
        used = set(re.findall(r"\{(\w+)\}", json.dumps([r.model, r.data, r.config, r.seed, r.smoke])))
        if used - set(variant):
            raise DataError(f"lab {lab_id}: run {r.id} uses {sorted(used - set(variant))}, not declared in "
                            "the header's \"variant\"")
    return Lab(lab_id, header["title"], header.get("summary", ""), steps, int(header.get("minutes", 20)),
               variant, {**ATTEMPTS, **header.get("attempts", {})})


def load_labs(directory: Path) -> dict[str, Lab]:
    return {p.stem: parse_lab(p.read_text(encoding="utf-8"), p.stem) for p in sorted(directory.glob("*.md"))}


# ---- per-student variants ------------------------------------------------------------------------------

def student_seed(lab_id: str, student: str) -> int:
    """The variant seed of ``student`` in lab ``lab_id``: the first 8 bytes of sha256(lab id:student id)."""
    return int.from_bytes(hashlib.sha256(f"{lab_id}:{student}".encode()).digest()[:8], "big")


def variant_for(lab: Lab, student: str | None) -> dict:
    """The parameters ``student`` gets (name -> value); the defaults without a student id."""
    out, seed = {}, student_seed(lab.id, student or "")
    for name, d in lab.variant.items():
        choices = d.get("choose")
        if not student:
            out[name] = d.get("default", choices[0] if choices else d["range"][0])
            continue
        h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big")
        lo, hi = (0, len(choices) - 1) if choices else (int(d["range"][0]), int(d["range"][1]))
        k = lo + h % (hi - lo + 1)
        out[name] = choices[k] if choices else k
    return out


def _sub(obj, values: dict):
    """``obj`` with ``{NAME}`` replaced by ``values[NAME]`` in every string (a whole "{NAME}" keeps its type);
    only declared names are touched, so LaTeX braces in a prompt stay as they are."""
    if isinstance(obj, str):
        m = re.fullmatch(r"\{(\w+)\}", obj)
        if m and m.group(1) in values:
            return values[m.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), obj)
    if isinstance(obj, list):
        return [_sub(x, values) for x in obj]
    if isinstance(obj, dict):
        return {k: _sub(v, values) for k, v in obj.items()}
    return obj


def instantiate(lab: Lab, values: dict, smoke: bool = False) -> Lab:
    """The lab as one student sees it: every ``{NAME}`` replaced; with ``smoke`` each run's small config."""
    steps = []
    for s in lab.steps:
        runs = [replace(r, model=_sub(r.model, values), data=_sub(r.data, values),
                        config=_sub({**r.config, **(r.smoke if smoke else {})}, values),
                        seed=int(_sub(r.seed, values))) for r in s.runs]
        qs = [replace(q, prompt=_sub(q.prompt, values), answer=_sub(q.answer, values), hint=_sub(q.hint, values),
                      options=_sub(copy.deepcopy(q.options), values)) for q in s.questions]
        steps.append(Step(s.title, _sub(s.text, values), runs, qs))
    return replace(lab, steps=steps)


# ---- grading -------------------------------------------------------------------------------------------

def reference(expr: str, results: dict) -> str | float:
    """Evaluate an answer expression against ``results`` (run id -> Result)."""
    kind, _, rest = expr.partition(":")
    if kind == "value":
        return rest
    run_id, _, name = rest.partition(":")
    if run_id not in results:
        raise DataError(f"answer {expr!r} needs run {run_id!r}, which has not run yet")
    r = results[run_id]
    try:
        if kind == "metric":
            return float(r.metrics[name])
        if kind == "info":
            v = r.info[name]
            return str(v[0] if isinstance(v, list) and v else v)
        if kind == "check":
            return "pass" if next(c for c in r.checks if c.name == name).passed else "fail"
    except (KeyError, StopIteration):
        raise DataError(f"the result of run {run_id!r} has no {kind} {name!r}",
                        "the run's analyzer or configuration differs from the lab's") from None
    if kind == "failing":
        bad = sorted(c.name[len(name):] for c in r.checks if c.name.startswith(name) and not c.passed)
        return ", ".join(bad) or "none"
    if kind == "top":
        return max(name.split(","), key=lambda m: float(r.metrics[m]))
    if kind == "rank":
        names = name.split(",")
        common = os.path.commonprefix(names) if len(names) > 1 else ""
        prefix = common[: common.rfind("_") + 1]
        ordered = sorted(names, key=lambda m: -float(r.metrics[m]))
        return ", ".join(m[len(prefix):] for m in ordered)
    raise DataError(f"unknown answer expression {expr!r}")


def _needs(q: Question) -> str | None:
    return None if q.answer.startswith("value:") else q.answer.split(":")[1]


def _holds(value, expect) -> bool:
    if isinstance(expect, dict):
        v = float(value)
        return float(expect.get("min", float("-inf"))) <= v <= float(expect.get("max", float("inf")))
    return str(value) == str(expect)


def grade(q: Question, given, results: dict) -> tuple[bool, str | float]:
    """(correct, reference) for one answer. Numbers use the question's tolerance; a property question is
    correct when its expression, read from the student's own run, meets ``expect`` (``given`` is ignored)."""
    ref = reference(q.answer, results)
    if q.kind == "property":
        return _holds(ref, q.expect), ref
    if given is None or given == "":
        return False, ref
    if q.kind == "number":
        try:
            value = float(given)
        except (TypeError, ValueError):
            return False, ref
        tol = q.tolerance or {"rel": 0.05}
        limit = max(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0)) * abs(float(ref)))
        return abs(value - float(ref)) <= limit, ref
    norm = ", ".join(x.strip() for x in str(given).split(",")) if q.kind == "ranking" else str(given).strip()
    return norm == str(ref), ref


def answered(q: Question, given, results: dict) -> bool:
    """Whether there is anything to grade: an answer, or for a property question the student's run."""
    if q.kind == "property":
        return _needs(q) in results
    return given is not None and given != ""


def credit(points: float, attempts: int, policy: dict) -> float:
    """Points for a correct answer at attempt ``attempts`` (1-based) under the lab's attempts policy."""
    k = max(1, int(attempts))
    return points * max(float(policy["floor"]), 1.0 - float(policy["penalty"]) * (k - 1))


def mark(lab: Lab, q: Question, given, results: dict, attempts: int = 1) -> dict:
    """One graded row: status correct / wrong / not answered, the reference (None while its run is
    missing), the points earned with the partial credit of ``attempts``."""
    ref, status, run = None, NOT_ANSWERED, lab.runs.get(_needs(q) or "")
    if _needs(q) is None or _needs(q) in results:
        try:
            ok, ref = grade(q, given, results)
        except DataError:
            if not (run and run.own_model):  # a lab run lacking the value is the lab's bug: say so
                raise
            ok = False  # the student's own result lacks it (e.g. sanity_check off): the analysis is wrong
        if answered(q, given, results):
            status = CORRECT if ok else WRONG
    pts = credit(q.points, attempts, lab.attempts) if status == CORRECT else 0.0
    return {"question": q.id, "given": given, "reference": ref, "status": status, "correct": status == CORRECT,
            "answered": status != NOT_ANSWERED, "attempts": int(attempts), "points": pts, "of": q.points}
