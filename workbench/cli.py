"""`workbench zoo|analyzers|run|report|app`: the command-line contract every front end shares.

Bad input exits 2 with one line on stderr naming the problem (no traceback).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see ENVIRONMENT.md

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from workbench.core.errors import Cancelled, WorkbenchError  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage too)
        sys.stderr.write(f"workbench: error: {message} (hint: workbench {self.prog.split()[-1]} --help)\n")
        raise SystemExit(2)


class _Progress:
    """A progress bar on stderr; redraws in place on a terminal, prints every 10% otherwise."""

    def __init__(self) -> None:
        self.tty, self.last, self.t0 = sys.stderr.isatty(), -1, time.time()

    def __call__(self, fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if fraction <= 0:  # nothing done yet: an early one-line error should stand alone
            return
        if not self.tty and pct // 10 == self.last // 10 and pct < 100:
            return
        self.last = pct
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        line = f"[{bar}] {pct:3d}% {time.time() - self.t0:6.1f}s {message[:50]}"
        sys.stderr.write(("\r" + line.ljust(100)) if self.tty else line + "\n")
        _Progress.open_line = self.tty and pct < 100
        if self.tty and pct >= 100:
            sys.stderr.write("\n")
        sys.stderr.flush()

    #: a bar drawn in place and not finished: an error must start on a line of its own
    open_line = False


def _cmd_zoo(args) -> int:
    from workbench.core.cards import list_cards

    if args.zoo_cmd in ("add-artifact", "add-pruned"):
        from workbench.core.result import Result
        from workbench.report import check_complete
        from workbench.runtime.zoo import add_model_artifact

        # the analyzer's Result class, through the registry
        artifact = Result.load(check_complete(args.dir)).model_artifact()
        if artifact is None:
            raise WorkbenchError(f"{args.dir} holds no model", "give the --out folder of a run that keeps one, "
                                                               "e.g. `workbench run lrp_pruning`")
        print(add_model_artifact(artifact, args.label))
        return 0
    if args.zoo_cmd == "add":
        from workbench.io.weights import read_safetensors_file
        from workbench.runtime.zoo import add_user_weights

        data = read_safetensors_file(args.file)  # regular file only, size checked before reading, bounded
        print(add_user_weights(args.base, data, args.label or Path(args.file).stem))
        return 0
    rows = [c.summary() for c in list_cards()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':32} {'kind':9} {'dataset':12} {'weights':12} {'params':>10} {'acc':>6}  {'sha256':16}  licence")
    for r in rows:
        acc = f"{r['accuracy']:.3f}" if isinstance(r["accuracy"], float) else "-"
        src = r["weights_source"] + ("" if r["available"] else "(missing)")
        print(f"{r['id']:32} {r['kind']:9} {r['dataset'][:12]:12} {src:12} {r['params'] or 0:>10,} "
              f"{acc:>6}  {(r['sha256'] or '-')[:16]:16}  {r.get('licence') or '-'}")
    return 0


def _cmd_analyzers(args) -> int:
    from workbench.core.analyzer import list_analyzers

    rows = [a.describe() for a in list_analyzers()]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        print(f"{r['name']:20} supports {', '.join(r['supports']):24} {r['title']}")
        for f in r["config"]:
            print(f"    {f['name']:20} = {f['default']!s:24} {f['help']}")
    return 0


def _cmd_run(args) -> int:
    from workbench.core.config import parse_set_args
    from workbench.core.result_folder import ResultFolder
    from workbench.report import render_report
    from workbench.runtime import RunContext, RunSpec, run

    spec = RunSpec(args.analyzer, args.model, args.data, parse_set_args(args.set), args.device, args.seed,
                   args.batch_size)
    # --out is checked and locked before anything is computed; the folder appears only when complete
    with ResultFolder(args.out, args.force) as folder:
        ctx = RunContext(on_progress=None if args.quiet else _Progress())
        if args.memory_budget_mb is not None:
            ctx.memory_budget_mb = args.memory_budget_mb
        result = run(spec, ctx)
        html = render_report([result], title=result.title).encode("utf-8")
        out = folder.commit(*result.folder_files({"report.html": html}))
    failed = [c.name for c in result.checks if not c.passed]
    sys.stderr.write(f"wrote {out}/result.json, arrays.npz, report.html"
                     f"{'; failing checks: ' + ', '.join(failed) if failed else ''}\n")
    return 0


def _cmd_report(args) -> int:
    from workbench.core.result import Result
    from workbench.core.result_folder import check_file_destination
    from workbench.report import check_complete, write_report

    check_file_destination(args.output)  # a bad -o fails before any result is read
    results = [Result.load(check_complete(d)) for d in args.dirs]
    write_report(results, args.output, title=args.title)
    sys.stderr.write(f"wrote {args.output} ({len(results)} result(s))\n")
    return 0


def _cmd_lab(args) -> int:
    from workbench.runtime.labs import check_answers, get_lab, labs

    if getattr(args, "lab_handler", None):  # grade / variant / key: workbench/lab_cli.py
        return args.lab_handler(args)
    if args.lab_cmd == "list":
        rows = [{"id": k, "title": v.title, "steps": len(v.steps), "points": v.total_points,
                 "analyzers": sorted({r.analyzer for r in v.runs.values()})} for k, v in labs().items()]
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            print(f"{r['id']:20} {r['steps']:2d} steps {r['points']:4g} pts  {r['title']}")
        return 0
    try:
        answers = json.loads(Path(args.answers).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WorkbenchError(f"cannot read answers from {args.answers} ({type(e).__name__})",
                             'give a JSON object {"question_id": answer}') from None
    if not isinstance(answers, dict):
        raise WorkbenchError("the answers file must hold a JSON object {question_id: answer}")
    report = check_answers(get_lab(args.lab), answers)
    print(json.dumps(report, indent=2, default=str))
    return 0


def _cmd_sweep(args) -> int:
    from workbench.sweep.cli import command

    return command(args)


def _cmd_app(args) -> int:
    app = Path(__file__).with_name("app.py")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
           "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.maxUploadSize", "250", "--client.showErrorDetails", "none", "--client.toolbarMode", "minimal"]
    os.execv(sys.executable, cmd)  # replaces this process: the CLI itself never imports streamlit
    return 0


#: the largest --batch-size accepted (a typo such as 10**9 must not reach an allocation)
MAX_BATCH = 65536


def _int_in(flag: str, lo: int, hi: int):
    """An argparse type: a whole number in [lo, hi] (argparse turns the ValueError into one line, exit 2)."""
    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, not {text[:40]!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{flag} must be in {lo}..{hi}, not {text[:40]}")
        return v
    parse.__name__ = flag
    return parse


def _nonempty(flag: str):
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{flag} is empty")
        return text
    parse.__name__ = flag
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="workbench", description="CNN interpretability workbench")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    z = sub.add_parser("zoo", help="the model zoo")
    zs = z.add_subparsers(dest="zoo_cmd", required=True, parser_class=_Parser)
    zl = zs.add_parser("list", help="every model: id, kind, dataset, weights source, params, accuracy, sha256, licence")
    zl.add_argument("--json", action="store_true")
    za = zs.add_parser("add", help="add safetensors weights for a zoo architecture")
    za.add_argument("base", help="zoo id whose architecture the weights fit, e.g. resnet18.untrained")
    za.add_argument("file")
    za.add_argument("--label", default="")
    zp = zs.add_parser("add-artifact", aliases=["add-pruned"],
                       help="register the model a saved result carries (e.g. the pruned model of lrp_pruning)")
    zp.add_argument("dir", help="the --out folder of a run whose result keeps a model")
    zp.add_argument("--label", default="")
    a = sub.add_parser("analyzers", help="every analyzer: name, kinds, config fields")
    a.add_argument("--json", action="store_true")
    r = sub.add_parser("run", help="run one analyzer; writes result.json, arrays.npz, report.html")
    r.add_argument("analyzer")
    r.add_argument("--model", default=None, help="zoo id, or FILE.py:FUNCTION (your own code, returning an "
                   "nn.Module); optional for analyzers that build their own")
    r.add_argument("--weights", default=None, help="safetensors weights for --model FILE.py:FUNCTION")
    r.add_argument("--data", default=None, type=_nonempty("--data"),
                   help="data id (digits:0, skimage:chelsea, ...) or image path")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    r.add_argument("--seed", type=_int_in("--seed", 0, 2**63 - 1), default=0, help="0 .. 2**63-1")
    r.add_argument("--batch-size", type=_int_in("--batch-size", 1, MAX_BATCH), default=32)
    r.add_argument("--memory-budget-mb", type=_int_in("--memory-budget-mb", 64, 2**20), default=None,
                   help="memory the run's data may take (decoded samples and the per-sample arrays kept; "
                        "default: RunContext.memory_budget_mb); a run estimated above it is refused at once")
    r.add_argument("--out", required=True, type=_nonempty("--out"))
    r.add_argument("--force", action="store_true",
                   help="replace a result already in --out (the old one stays until the new one is complete)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    rp = sub.add_parser("report", help="one HTML report from saved result folders")
    rp.add_argument("dirs", nargs="+")
    rp.add_argument("-o", "--output", required=True, type=_nonempty("-o"))
    rp.add_argument("--title", default="CNN workbench report")
    lb = sub.add_parser("lab", help="teaching labs")
    ls = lb.add_subparsers(dest="lab_cmd", required=True, parser_class=_Parser)
    ll = ls.add_parser("list", help="every lab: id, steps, points")
    ll.add_argument("--json", action="store_true")
    lc = ls.add_parser("check", help="grade a student's answers against fresh analyzer runs")
    lc.add_argument("lab")
    lc.add_argument("--answers", required=True, help='JSON file {"question_id": answer}')
    from workbench.lab_cli import add_commands as add_lab_commands  # grade / variant / key

    add_lab_commands(ls)
    from workbench.sweep.cli import add_parser as add_sweep_parser  # workbench sweep: its own module

    add_sweep_parser(sub)
    ap = sub.add_parser("app", help="start the Streamlit app")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=_int_in("--port", 1, 65535), default=8501)
    ap.add_argument("--models", action="append", default=[], metavar="FILE.py",
                    help="your own model file: every builder function becomes a card user.<function>")
    ap.add_argument("--weights", action="append", default=[], metavar="FUNCTION=FILE.safetensors",
                    help="safetensors weights for one function of --models")
    return p


def _add_env(name: str, value: str) -> None:
    os.environ[name] = os.pathsep.join([value, *[v for v in os.environ.get(name, "").split(os.pathsep) if v]])


def _user_models(args) -> None:
    """`run --model FILE.py:FN [--weights W]` and `app --models FILE.py [--weights FN=W]`: the user's own
    files reach the ``user.*`` card factory through the environment (the app process inherits it)."""
    from workbench.core.module_card import USER_MODELS_ENV, USER_WEIGHTS_ENV

    if args.cmd == "run":
        path, sep, fn = (args.model or "").rpartition(":")
        if not (sep and path.endswith(".py")):
            if args.weights:
                raise WorkbenchError("--weights goes with --model FILE.py:FUNCTION",
                                     "for a zoo architecture use `workbench zoo add ID FILE`")
            return
        if not Path(path).is_file():
            raise WorkbenchError(f"no file {path}", "give --model FILE.py:FUNCTION with an existing file")
        _add_env(USER_MODELS_ENV, str(Path(path).resolve()))
        if args.weights:
            _add_env(USER_WEIGHTS_ENV, f"{fn}={Path(args.weights).resolve()}")
        args.model = f"user.{fn}"
    elif args.cmd == "app":
        for f in args.models:
            if not (f.endswith(".py") and Path(f).is_file()):
                raise WorkbenchError(f"no Python file {f}", "give --models FILE.py")
            _add_env(USER_MODELS_ENV, str(Path(f).resolve()))
        for w in args.weights:
            fn, sep, path = w.partition("=")
            if not (sep and fn and Path(path).is_file()):
                raise WorkbenchError(f"--weights {w!r} is not FUNCTION=FILE.safetensors with an existing file")
            _add_env(USER_WEIGHTS_ENV, f"{fn}={Path(path).resolve()}")


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning raised during a command (a loader's, a library's) as one line on stderr, like the CLI's
    own warnings, instead of Python's two (file:line: Category: text, then the source line)."""
    text = (str(message).strip().splitlines() or [""])[0][:300]
    _say(f"workbench: warning: {text if category is UserWarning else f'{category.__name__}: {text}'}\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _warning_line  # filters unchanged: Python's "default" still shows each once per place
    handlers = {"zoo": _cmd_zoo, "analyzers": _cmd_analyzers, "run": _cmd_run, "report": _cmd_report,
                "app": _cmd_app, "lab": _cmd_lab, "sweep": _cmd_sweep}
    try:
        from workbench.io.weights import refuse_unsafe_environment
        from workbench.runtime.zoo import load_user_cards

        refuse_unsafe_environment()
        _user_models(args)
        if args.cmd != "app":
            for line in load_user_cards().skipped:  # a broken upload is named, never dropped silently
                sys.stderr.write(f"workbench: warning: {line}\n")
        return handlers[args.cmd](args) or 0
    except Cancelled as e:
        _say(f"workbench: {e.one_line()}\n")
        return 130
    except WorkbenchError as e:
        _say(f"workbench: error: {e.one_line()}\n")
        return 2
    except KeyboardInterrupt:
        _say("workbench: interrupted\n")
        return 130
    except BrokenPipeError:  # `workbench zoo list | head`: the reader left, nothing to say
        return 0
    except Exception as e:  # still one line; WORKBENCH_DEBUG=1 shows the traceback
        if os.environ.get("WORKBENCH_DEBUG") == "1":
            raise
        if isinstance(e, (OSError, MemoryError, RecursionError)):  # the system refused (disk full, no memory)
            return _fail(f"{type(e).__name__}: {e}", "free space or memory, or check permissions, and run again")
        return _fail(f"internal error {type(e).__name__}: {e}",
                     "this is a bug, please report it; WORKBENCH_DEBUG=1 shows the traceback")


def _say(text: str) -> None:
    if _Progress.open_line:
        sys.stderr.write("\n")
        _Progress.open_line = False
    sys.stderr.write(text)


def _fail(message: str, hint: str) -> int:
    _say(f"workbench: error: {' '.join(message.split())[:500]} (hint: {hint})\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
