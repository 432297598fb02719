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
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import DataError

_FENCE = re.compile(r"```lab\s*\n(.*?)\n```", re.S)
KINDS = ("number", "choice", "ranking")


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


@dataclass
class LabRun:
    id: str
    analyzer: str
    model: str | None
    data: str | None
    config: dict
    tweak: list = field(default_factory=list)


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
        for raw in _FENCE.findall(body):
            doc = _block(raw, f"lab {lab_id}, step '{step.title}'")
            if "run" in doc:
                r = doc["run"]
                step.runs.append(LabRun(r["id"], r["analyzer"], r.get("model"), r.get("data"),
                                        dict(r.get("config", {})), list(r.get("tweak", []))))
            else:
                q = Question(**doc["question"])
                if q.kind not in KINDS:
                    raise DataError(f"lab {lab_id}: question {q.id} has kind {q.kind!r}, not one of {KINDS}")
                step.questions.append(q)
        steps.append(step)
    if not steps:
        raise DataError(f"lab {lab_id} has no steps (## headings)")
    return Lab(lab_id, header["title"], header.get("summary", ""), steps, int(header.get("minutes", 20)))


def load_labs(directory: Path) -> dict[str, Lab]:
    return {p.stem: parse_lab(p.read_text(encoding="utf-8"), p.stem) for p in sorted(directory.glob("*.md"))}


def reference(expr: str, results: dict) -> str | float:
    """Evaluate an answer expression against ``results`` (run id -> Result)."""
    kind, _, rest = expr.partition(":")
    if kind == "value":
        return rest
    run_id, _, name = rest.partition(":")
    if run_id not in results:
        raise DataError(f"answer {expr!r} needs run {run_id!r}, which has not run yet")
    r = results[run_id]
    if kind == "metric":
        return float(r.metrics[name])
    if kind == "info":
        v = r.info[name]
        return str(v[0] if isinstance(v, list) and v else v)
    if kind == "check":
        return "pass" if next(c for c in r.checks if c.name == name).passed else "fail"
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


def grade(q: Question, given, results: dict) -> tuple[bool, str | float]:
    """(correct, reference) for one answer. Numbers use the question's tolerance."""
    ref = reference(q.answer, results)
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
