"""Grade a class: a folder of submissions -> one graded report per student, a gradebook CSV and
Gradescope's results.json.

A submission is one JSON file per student (any name ending in ``.json``)::

    {"student": "s1234",                          # required: the id the variant is derived from
     "answers": {"q1": 0.42, "q2": "pass"},        # question id -> answer (absent = not answered)
     "attempts": {"q1": 2},                         # optional: attempts used, for partial credit
     "results": {"own": "own_lrp"}}                 # optional: own-model runs, result folders written by
                                                    # ``result.save(DIR)``, relative to the submission file

A file that is not such an object is listed with its error and graded as nothing; the others still are.
Gradescope's autograder format (``tests`` with name, score, max_score, visibility; top-level ``score``)
is written per student in ``OUT/gradescope/<student>/results.json``, and as ``OUT/results.json`` when
the folder holds one submission (the autograder grades one student at a time).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import DataError, WorkbenchError
from workbench.core.labs import Lab
from workbench.core.result import Result
from workbench.io import limits
from workbench.io.safe import read_file
from workbench.runtime.labs import RunCache, check_answers

MAX_SUBMISSION_BYTES = 1 << 20
SUMMARY = "summary.json"
_ID = re.compile(r"[\w@+-][\w.@+-]{0,127}")  # a student id also names files: no leading dot, no slash


@dataclass
class Submission:
    file: str
    student: str = ""
    answers: dict = field(default_factory=dict)
    attempts: dict = field(default_factory=dict)
    own: dict = field(default_factory=dict)
    error: str = ""


def read_submission(path: Path, need_student: bool = True) -> Submission:
    """One submission file, checked; a malformed one comes back with ``error`` set (one line). Without
    ``need_student`` a bare object {question_id: answer} (the answers file of ``lab check``) is accepted."""
    sub = Submission(path.name)
    try:
        doc = json.loads(read_file(path, MAX_SUBMISSION_BYTES, what="submission", nofollow=True))
    except WorkbenchError as e:
        sub.error = e.message
        return sub
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        sub.error = f"not valid JSON ({getattr(e, 'msg', type(e).__name__)})"
        return sub
    if not isinstance(doc, dict):
        sub.error = 'not a JSON object {"student": ..., "answers": {...}}'
        return sub
    if not need_student and "answers" not in doc:
        doc = {"student": "", "answers": doc}
    student, answers = doc.get("student"), doc.get("answers", {})
    attempts, own = doc.get("attempts", {}), doc.get("results", {})
    if not isinstance(student, str) or (need_student or student) and not _ID.fullmatch(student):
        sub.error = '"student" is missing or not an id (letters, digits, . _ @ + -)'
    elif not isinstance(answers, dict) or not all(isinstance(v, (str, int, float, type(None)))
                                                  for v in answers.values()):
        sub.error = '"answers" must be an object {question_id: number or text}'
    elif not isinstance(attempts, dict) or not all(isinstance(v, int) and v >= 1 for v in attempts.values()):
        sub.error = '"attempts" must be an object {question_id: attempts >= 1}'
    elif not isinstance(own, dict) or not all(isinstance(v, str) for v in own.values()):
        sub.error = '"results" must be an object {run_id: result folder}'
    if sub.error:
        return sub
    sub.student, sub.answers, sub.attempts = student, answers, attempts
    for rid, folder in own.items():
        try:
            sub.own[rid] = Result.load(path.parent / folder)
        except WorkbenchError as e:
            sub.error = f"results.{rid}: {e.message}"
    return sub


def read_submissions(folder: Path) -> list[Submission]:
    if not folder.is_dir():
        raise DataError(f"no folder {folder}", "give --submissions DIR holding one JSON file per student")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
    if not files:
        raise DataError(f"no .json submissions in {folder}", "one file per student, see `workbench lab grade -h`")
    subs, seen = [], {}
    for p in files:
        s = read_submission(p)
        if not s.error and s.student in seen:
            s.error = f"student {s.student} also submitted {seen[s.student]}"
        seen.setdefault(s.student, p.name)
        subs.append(s)
    return subs


def grade_folder(lab: Lab, folder: Path, out: Path, *, smoke: bool = False, cache: RunCache | None = None,
                 log=None) -> list[dict]:
    """Grade every submission in ``folder``; write ``out/<student>.json`` and ``out/summary.json``.
    Returns the summary rows. ``log(line)`` reports progress (stderr by default)."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    cache = cache or RunCache()
    subs = read_submissions(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # before any run: a wrong --out costs nothing
        raise WorkbenchError(f"cannot write grades to {out} ({e.strerror})", "give --out a writable folder") from None
    rows = []
    for i, s in enumerate(subs, 1):
        row = {"file": s.file, "student": s.student or Path(s.file).stem, "error": s.error}
        if not s.error:
            try:
                report = check_answers(lab, s.answers, student=s.student, attempts=s.attempts, own=s.own,
                                       smoke=smoke, cache=cache)
            except WorkbenchError as e:  # one student's runs failing must not stop the class
                row["error"] = e.message
            else:
                (out / f"{s.student}.json").write_text(json.dumps(report, indent=2, default=str))
                row.update(score=report["score"], total=report["total"],
                           questions={q["question"]: {k: q[k] for k in ("status", "points", "of")}
                                      for q in report["questions"]}, notes=report["notes"])
        if row["error"]:
            row.update(score=0.0, total=lab.total_points, questions={})
        rows.append(row)
        log(f"[{i}/{len(subs)}] {row['student']}: " + (f"ERROR {row['error']}" if row["error"] else
                                                          f"{row['score']:g} / {row['total']:g}")
            + f"  (runs computed {cache.misses}, reused {cache.hits})")
    (out / SUMMARY).write_text(json.dumps({"lab": lab.id, "questions": [q.id for q in lab.questions],
                                           "points": {q.id: q.points for q in lab.questions},
                                           "students": rows}, indent=2, default=str))
    return rows


def gradebook_csv(lab: Lab, rows: list[dict]) -> str:
    """student, one column per question (points earned), total, max, error."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    qids = [q.id for q in lab.questions]
    w.writerow(["student", *qids, "total", "max", "error"])
    for r in rows:
        cells = ["" if r["error"] else f"{r['questions'][q]['points']:g}" for q in qids]
        w.writerow([r["student"], *cells, f"{r['score']:g}", f"{r['total']:g}", r["error"]])
    return buf.getvalue()


def gradescope_results(lab: Lab, row: dict) -> dict:
    """Gradescope's autograder results.json for one student (no reference answers: they are per student)."""
    if row["error"]:
        return {"score": 0.0, "output": f"submission not graded: {row['error']}", "tests": []}
    tests = [{"name": f"{q.id}: {q.prompt[:80]}", "score": row["questions"][q.id]["points"],
              "max_score": q.points, "visibility": "visible", "output": row["questions"][q.id]["status"]}
             for q in lab.questions]
    return {"score": row["score"], "tests": tests, "output": "; ".join(row.get("notes") or [])}


def write_exports(lab: Lab, rows: list[dict], out: Path, csv_out: bool, gradescope: bool) -> list[Path]:
    written = []
    if csv_out:
        (out / "gradebook.csv").write_text(gradebook_csv(lab, rows))
        written.append(out / "gradebook.csv")
    if gradescope:
        for r in rows:
            d = out / "gradescope" / re.sub(r"[^\w.@+-]|^\.", "_", r["student"])  # never a path
            d.mkdir(parents=True, exist_ok=True)
            (d / "results.json").write_text(json.dumps(gradescope_results(lab, r), indent=2))
            written.append(d / "results.json")
        if len(rows) == 1:
            (out / "results.json").write_text(json.dumps(gradescope_results(lab, rows[0]), indent=2))
            written.append(out / "results.json")
    return written


def class_summary(out: Path) -> dict:
    """A graded folder's summary (for the teacher's page): scores, per-question misses, the most missed."""
    f = out / SUMMARY
    if not f.is_file():
        raise DataError(f"no {SUMMARY} in {out}", "grade the class first: workbench lab grade ... --out DIR")
    doc = json.loads(read_file(f, limits.MAX_RESULT_JSON_BYTES, what="grades summary", nofollow=True))
    graded = [s for s in doc["students"] if not s.get("error")]
    missed = {q: sum(1 for s in graded if s["questions"][q]["status"] != "correct") for q in doc["questions"]}
    worst = max(missed, key=lambda q: missed[q]) if graded and any(missed.values()) else None
    return {"lab": doc["lab"], "scores": [s["score"] for s in graded], "total": doc["students"][0]["total"]
            if doc["students"] else 0, "missed": missed, "most_missed": worst,
            "errors": [(s["student"], s["error"]) for s in doc["students"] if s.get("error")]}
