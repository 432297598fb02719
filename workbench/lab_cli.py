"""`workbench lab grade | variant | key`: the teacher's commands (hooked into workbench/cli.py).

    workbench lab variant LAB --student ID       the parameters that student's lab uses
    workbench lab key LAB --student ID           the answer key of that variant (runs the lab once)
    workbench lab grade LAB --submissions DIR --out DIR [--csv] [--gradescope] [--cache DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from workbench.core.errors import DataError

SUBMISSION_HELP = ('one JSON file per student: {"student": ID, "answers": {question_id: answer}, optional '
                   '"attempts": {question_id: n}, "results": {run_id: result folder}}')


def add_commands(lab_sub) -> None:
    """Add grade / variant / key to the ``lab`` subparsers of workbench/cli.py."""
    g = lab_sub.add_parser("grade", help="grade a folder of submissions (gradebook CSV, Gradescope JSON)",
                           description=SUBMISSION_HELP)
    g.add_argument("lab")
    g.add_argument("--submissions", required=True, metavar="DIR", help=SUBMISSION_HELP)
    g.add_argument("--out", required=True, metavar="DIR", help="graded reports, summary.json and the exports")
    g.add_argument("--csv", action="store_true", help="write OUT/gradebook.csv (student, per-question points, total)")
    g.add_argument("--gradescope", action="store_true",
                   help="write Gradescope results.json per student (OUT/gradescope/ID/results.json)")
    g.add_argument("--cache", metavar="DIR", default="",
                   help="keep the lab's runs here so a second grading reruns nothing (default: memory only)")
    g.add_argument("--smoke", action="store_true",
                   help="use each run's small test configuration (for trying the pipeline; keys differ)")
    for name, text in (("variant", "the variant parameters a student gets"),
                       ("key", "the answer key of a student's variant (runs the lab)")):
        p = lab_sub.add_parser(name, help=text)
        p.add_argument("lab")
        p.add_argument("--student", required=True)
        p.add_argument("--smoke", action="store_true", help="the small test configuration's key")
    lab_sub.choices["check"].add_argument("--student", default="",
                                          help="grade against this student's variant (default: the lab's defaults)")
    for name in ("grade", "variant", "key", "check"):
        lab_sub.choices[name].set_defaults(lab_handler=run)


def run(args) -> int:
    from workbench.core.labs import student_seed
    from workbench.runtime.labs import RunCache, answer_key, check_answers, get_lab, student_lab

    lab = get_lab(args.lab)  # an unknown lab is an UnknownIdError: one line, exit 2 in cli.main
    if args.lab_cmd == "variant":
        _, values = student_lab(lab, args.student)
        print(json.dumps({"lab": lab.id, "student": args.student, "seed": student_seed(lab.id, args.student),
                          "variant": values}, indent=2))
        return 0
    if args.lab_cmd == "key":
        print(json.dumps(answer_key(lab, args.student, args.smoke), indent=2, default=str))
        return 0
    from workbench.runtime.lab_grading import grade_folder, read_submission, write_exports

    if args.lab_cmd == "check":  # an answers object {question_id: answer}, or a whole submission file
        sub = read_submission(Path(args.answers), need_student=False)
        if sub.error:
            raise DataError(f"{args.answers}: {sub.error}", SUBMISSION_HELP)
        report = check_answers(lab, sub.answers, student=args.student or sub.student or None,
                               attempts=sub.attempts, own=sub.own)
        print(json.dumps(report, indent=2, default=str))
        return 0

    out = Path(args.out)
    rows = grade_folder(lab, Path(args.submissions), out, smoke=args.smoke, cache=RunCache(args.cache or None))
    written = write_exports(lab, rows, out, args.csv, args.gradescope)
    bad = sum(1 for r in rows if r["error"])
    made = (["gradebook.csv"] if args.csv else []) + \
        ([f"{sum(p.name == 'results.json' for p in written)} Gradescope results.json"] if args.gradescope else [])
    sys.stderr.write(f"graded {len(rows) - bad} of {len(rows)} submission(s) into {out}"
                     f"{'; ' + str(bad) + ' with errors (listed above)' if bad else ''}"
                     f"{'; wrote ' + ', '.join(made) if made else ''}\n")
    return 0

