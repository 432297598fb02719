"""Run a lab's analyses through the one runner and grade a student's answers against them."""

from __future__ import annotations

from pathlib import Path

from workbench.core.errors import UnknownIdError
from workbench.core.labs import Lab, LabRun, grade, load_labs
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


def spec_for(r: LabRun, overrides: dict | None = None) -> RunSpec:
    """The RunSpec of a lab run, with the student's tweaks (only the fields the lab allows)."""
    cfg = dict(r.config)
    over = {k: v for k, v in (overrides or {}).items() if k in r.tweak}
    model = over.pop("model", None) or r.model or ""  # "model" in tweak: the student's own card
    cfg.update(over)
    return RunSpec(r.analyzer, model, r.data, cfg, device="auto")


def run_all(lab: Lab, ctx: RunContext | None = None) -> dict:
    """Every run of the lab with its preset configuration: run id -> Result."""
    ctx = ctx or RunContext()
    out, runs = {}, list(lab.runs.values())
    for i, r in enumerate(runs):
        sub = RunContext(on_progress=lambda f, m, i=i, r=r: ctx.progress((i + f) / len(runs), f"{r.id}: {m}"),
                         cancel=ctx.cancel)
        out[r.id] = run(spec_for(r), sub)
    return out


def check_answers(lab: Lab, answers: dict, results: dict | None = None) -> dict:
    """Grade ``answers`` (question id -> value) against fresh runs; the teacher's CLI and the page share it."""
    results = results if results is not None else run_all(lab)
    rows, score = [], 0.0
    for q in lab.questions:
        ok, ref = grade(q, answers.get(q.id), results)
        score += q.points if ok else 0.0
        rows.append({"question": q.id, "given": answers.get(q.id), "reference": ref, "correct": ok,
                     "points": q.points if ok else 0.0, "of": q.points})
    return {"lab": lab.id, "score": score, "total": lab.total_points, "questions": rows}
