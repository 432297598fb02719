"""Run a lab's analyses through the one runner and grade a student's answers against them.

A student's lab is the lab file with the student's variant filled in (workbench.core.labs.variant_for):
the reference answers come from that student's own runs. Runs are cached by their full specification
(:class:`RunCache`), so students who share a variant, or runs that do not depend on the variant, are
computed once when a class is graded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from workbench.core.cache import BoundedCache
from workbench.core.errors import UnknownIdError, WorkbenchError
from workbench.core.labs import Lab, LabRun, instantiate, load_labs, mark, variant_for
from workbench.core.result import Result
from workbench.runtime.context import RunContext
from workbench.runtime.runner import RunSpec, run

LAB_DIR = Path(__file__).resolve().parents[2] / "labs"


def labs() -> dict[str, Lab]:
    return load_labs(LAB_DIR)


def get_lab(lab_id: str) -> Lab:
    found = labs()
    if lab_id not in found:
        raise UnknownIdError(f"no lab {lab_id!r}", f"known: {', '.join(found) or 'none'}")
    return found[lab_id]


def student_lab(lab: Lab, student: str | None, smoke: bool = False) -> tuple[Lab, dict]:
    """(the lab as ``student`` sees it, the student's variant parameters)."""
    values = variant_for(lab, student)
    return instantiate(lab, values, smoke), values


def spec_for(r: LabRun, overrides: dict | None = None) -> RunSpec:
    """The RunSpec of a lab run, with the student's tweaks (only the fields the lab allows)."""
    cfg = dict(r.config)
    over = {k: v for k, v in (overrides or {}).items() if k in r.tweak or (k == "model" and r.own_model)}
    model = over.pop("model", None) or ("" if r.own_model else r.model) or ""  # "model" tweak: own card
    cfg.update(over)
    return RunSpec(r.analyzer, model, r.data, cfg, device="auto", seed=int(r.seed or 0))


class RunCache:
    """Results by run specification: bounded in memory, and optionally kept on disk in ``folder``
    (one result folder per specification hash) so a second grading of the class reruns nothing."""

    def __init__(self, folder: str | Path | None = None, max_entries: int = 64) -> None:
        self.mem = BoundedCache(max_entries)
        self.folder = Path(folder) if folder else None
        self.hits = self.misses = 0

    @staticmethod
    def key(spec: RunSpec) -> str:
        doc = {"a": spec.analyzer, "m": spec.model, "d": spec.data, "c": spec.config, "s": spec.seed}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def get(self, spec: RunSpec, ctx: RunContext) -> Result:
        k = self.key(spec)
        hit = self.mem.get(k)
        if hit is None and self.folder is not None and (self.folder / k / "result.json").is_file():
            try:
                hit = Result.load(self.folder / k)
            except WorkbenchError:  # a damaged cache entry is recomputed, never trusted
                hit = None
        if hit is not None:
            self.hits += 1
            self.mem.put(k, hit)
            return hit
        self.misses += 1
        result = run(spec, ctx)
        self.mem.put(k, result)
        if self.folder is not None:
            result.save(self.folder / k, force=True)
        return result


def run_all(lab: Lab, ctx: RunContext | None = None, cache: RunCache | None = None) -> dict:
    """Every run of the lab with its preset configuration (own-model runs excepted): run id -> Result."""
    ctx = ctx or RunContext()
    lab = instantiate(lab, variant_for(lab, None))  # a lab file as read: its defaults; a student's: unchanged
    out, runs = {}, [r for r in lab.runs.values() if not r.own_model]
    for i, r in enumerate(runs):
        sub = RunContext(on_progress=lambda f, m, i=i, r=r: ctx.progress((i + f) / len(runs), f"{r.id}: {m}"),
                         cancel=ctx.cancel)
        spec = spec_for(r)
        out[r.id] = cache.get(spec, sub) if cache is not None else run(spec, sub)
    return out


def accept_own(lab: Lab, own: dict) -> tuple[dict, list[str]]:
    """The student's own-model results that fit the lab's ``@yours`` runs (analyzer and required config
    values), and one note per result refused. ``own``: run id -> Result."""
    ok, notes = {}, []
    for rid, res in (own or {}).items():
        r = lab.runs.get(rid)
        if r is None or not r.own_model:
            notes.append(f"{rid}: the lab has no run on your own model with this id")
        elif res.analyzer != r.analyzer:
            notes.append(f"{rid}: a {res.analyzer} result, the lab asks for {r.analyzer}")
        elif bad := [k for k in r.require if str(res.config.get(k)) != str(r.config.get(k))]:
            notes.append(f"{rid}: made with {', '.join(f'{k}={res.config.get(k)}' for k in bad)}; your variant "
                         f"asks for {', '.join(f'{k}={r.config.get(k)}' for k in bad)}")
        else:
            ok[rid] = res
    return ok, notes


def check_answers(lab: Lab, answers: dict, results: dict | None = None, *, student: str | None = None,
                  attempts: dict | None = None, own: dict | None = None, smoke: bool = False,
                  cache: RunCache | None = None, ctx: RunContext | None = None) -> dict:
    """Grade ``answers`` (question id -> value) against fresh runs of ``student``'s variant; the CLI, the
    batch grader and the page share it. ``attempts``: question id -> attempts used (partial credit);
    ``own``: run id -> Result of the student's own-model runs."""
    mine, values = student_lab(lab, student, smoke)
    results = dict(results) if results is not None else run_all(mine, ctx, cache)
    accepted, notes = accept_own(mine, own or {})
    results.update(accepted)
    rows = []
    for q in mine.questions:
        row = mark(mine, q, answers.get(q.id), results, (attempts or {}).get(q.id, 1))
        rows.append({**row, "prompt": q.prompt})
    score = sum(r["points"] for r in rows)
    return {"lab": lab.id, "student": student or "", "variant": values, "score": score,
            "total": mine.total_points, "questions": rows, "notes": notes}


def answer_key(lab: Lab, student: str | None, smoke: bool = False, cache: RunCache | None = None,
               ctx: RunContext | None = None) -> dict:
    """The reference answers of ``student``'s variant (own-model questions say what they check)."""
    report = check_answers(lab, {}, student=student, smoke=smoke, cache=cache, ctx=ctx)
    mine, _ = student_lab(lab, student, smoke)
    qs = {q.id: q for q in mine.questions}
    key = {}
    for row in report["questions"]:
        q = qs[row["question"]]
        key[q.id] = (f"from the student's own run: {q.answer} must be {q.expect}" if q.kind == "property"
                     else row["reference"] if row["reference"] is not None
                     else f"from the student's own run: {q.answer}")
    return {"lab": lab.id, "student": student or "", "variant": report["variant"], "answers": key}
