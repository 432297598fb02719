"""``workbench sweep ANALYZER --model ID [--model ID2] [--data ID] --grid key=v1,v2 [--grid ...] --seeds 0-4
[--executor local|ray[:ADDRESS]] [--workers N] --out DIR``.

Progress on stderr: one line per cell (started, done with its time, failed) and the whole grid's
fraction. Ctrl-C stops the running cells and keeps the finished ones (exit 130); the same command resumes.
Bad input (unknown grid key, a value outside its bounds or choices, bad seeds) exits 2 with one line
before anything runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workbench.sweep.grid import DEFAULT_THREADS


def _positive(flag: str, hi: int):
    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, not {text[:40]!r}") from None
        if not 1 <= v <= hi:
            raise argparse.ArgumentTypeError(f"{flag} must be in 1..{hi}, not {text[:40]}")
        return v
    parse.__name__ = flag
    return parse


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to the CLI's sub-parsers."""
    s = sub.add_parser("sweep", help="a grid of cells (config values x models x data x seeds), cached by content "
                                     "hash and resumable; writes DIR/result/ (aggregate) and DIR/cells/")
    s.add_argument("analyzer")
    s.add_argument("--model", action="append", default=[], help="zoo id; repeat for several models")
    s.add_argument("--data", action="append", default=[], help="data id; repeat for several (default: the card's)")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a Config field and its values, parsed by the field's type; repeat for more keys")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a fixed Config value")
    s.add_argument("--seeds", default="0", help="seeds: 0-4, 0,2 or 0-2,7 (default 0)")
    s.add_argument("--executor", default="local", help="local (default), ray, or ray:ADDRESS "
                   "(WORKBENCH_RAY_ADDRESS names a cluster for plain ray)")
    s.add_argument("--workers", type=_positive("--workers", 1024), default=None,
                   help="cells at once (default: cores // threads); 1 with local runs in this process")
    s.add_argument("--threads", type=_positive("--threads", 256), default=DEFAULT_THREADS,
                   help=f"torch threads per cell (default {DEFAULT_THREADS}; part of the cell key: float sums "
                        "may depend on it)")
    s.add_argument("--gpus-per-task", type=float, default=None, help="ray: GPU share per cell (default 0.25 on "
                   "a GPU machine)")
    s.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    s.add_argument("--metric", default="", help="the metric the figures show (default: chosen from the cells)")
    s.add_argument("--cache", default=None, help="cell cache folder (default DIR/cells); sweeps may share one")
    s.add_argument("--out", required=True)
    s.add_argument("--split", action="store_true", help="one call (one model, data id and seed; no --grid) split "
                   "into the analyzer's own cells (transferability: seeds x cuts; per-sample analyzers: the data set "
                   "in chunks of samples) and merged: DIR/result/ is the analyzer's own result")
    s.add_argument("--quiet", action="store_true", help="no per-cell lines")
    return s


class _Printer:
    """Progress lines on stderr: per cell, and the grid's fraction (every 10% off a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.tty, self.t0 = quiet, sys.stderr.isatty(), time.time()
        self.started: set[str] = set()
        self.kept, self.reused, self.last = 0, 0, -1

    def _line(self, text: str) -> None:
        sys.stderr.write(("\r" + " " * 100 + "\r" if self.tty else "") + text + "\n")
        sys.stderr.flush()

    def grid(self, fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if self.quiet or (pct // 10 == self.last // 10 and pct < 100 and not self.tty):
            return
        self.last = pct
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        line = f"[{bar}] {pct:3d}% {time.time() - self.t0:7.1f}s {message[:60]}"
        sys.stderr.write(("\r" + line.ljust(100)) if self.tty else line + "\n")
        sys.stderr.flush()

    def cell(self, kind: str, cell, data) -> None:
        if kind == "reused":
            self.reused += 1
            self.kept += 1
            return
        if kind == "done":
            self.kept += 1
        if self.quiet:
            return
        tag = f"{cell.model + ' ' if cell.model else ''}{cell.label()} [{cell.key[:8]}]"
        if kind == "progress" and cell.key not in self.started:
            self.started.add(cell.key)
            self._line(f"cell started: {tag}")
        elif kind == "done":
            self._line(f"cell done:    {tag} {data['wall_s']:.2f}s")
        elif kind == "failed" and data != "cancelled":
            self._line(f"cell FAILED:  {tag}: {data}")


def command(args) -> int:
    """Run the sweep the arguments describe; 0 when every cell finished, 2 when a cell failed, 130 on Ctrl-C."""
    from workbench.core.errors import Cancelled, WorkbenchError
    from workbench.core.result_folder import check_destination
    from workbench.report import render_report
    from workbench.runtime.context import RunContext
    from workbench.sweep.engine import RESULT_DIR, RunOptions, run_sweep
    from workbench.sweep.grid import SweepSpec, parse_fixed, parse_grid, parse_seeds

    fixed = parse_fixed(args.set)
    if args.split:
        return _split_command(args, fixed)
    grid = parse_grid(args.analyzer, args.grid, fixed)
    spec = SweepSpec(args.analyzer, args.model or [""], args.data or [None], grid, fixed, parse_seeds(args.seeds),
                     args.metric, args.device, args.threads)
    check_destination(Path(args.out) / RESULT_DIR, force=True)  # a bad --out fails before any cell runs
    printer = _Printer(args.quiet)
    options = RunOptions(args.executor, args.workers, args.cache, args.gpus_per_task)
    try:
        result = run_sweep(spec, args.out, options, RunContext(on_progress=printer.grid), printer.cell,
                           extras=lambda r: {"report.html": render_report([r], title=r.title).encode("utf-8")})
    except (KeyboardInterrupt, Cancelled):
        sys.stderr.write(f"\nworkbench: cancelled: {printer.kept} finished cell(s) kept in "
                         f"{args.cache or Path(args.out) / 'cells'}; run the same command to resume\n")
        return 130
    run = result.info.get("run", {})
    out = Path(args.out) / RESULT_DIR
    sys.stderr.write(f"wrote {out}/result.json, arrays.npz, report.html: {run.get('computed', 0)} cell(s) computed, "
                     f"{run.get('reused', 0)} reused, {run.get('wall_s', 0):.1f}s ({run.get('executor')}, "
                     f"{run.get('workers')} worker(s) x {run.get('threads_per_cell')} thread(s))\n")
    failed = result.info.get("failed", {})
    if failed:
        label, why = next(iter(failed.items()))
        raise WorkbenchError(f"{len(failed)} of {int(result.metrics['cells_total'])} cells failed (first: {label}: "
                             f"{why})", "fix the grid values and run again: finished cells are kept")
    return 0


def _split_command(args, fixed: dict) -> int:
    """``--split``: the analyzer's own cells of one call, merged into its Result in DIR/result/."""
    from workbench.core.errors import Cancelled, ConfigError
    from workbench.core.result_folder import check_destination
    from workbench.report import render_report
    from workbench.runtime.context import RunContext
    from workbench.sweep.engine import RESULT_DIR, RunOptions
    from workbench.sweep.grid import parse_seeds
    from workbench.sweep.split import SplitOptions, run_split

    seeds = parse_seeds(args.seeds)
    if args.grid or len(args.model) > 1 or len(args.data) > 1 or len(seeds) > 1:
        raise ConfigError("--split runs one call: one --model, one --data, one seed and no --grid",
                          "drop --split to sweep a grid")
    check_destination(Path(args.out) / RESULT_DIR, force=True)
    printer = _Printer(args.quiet)
    how = SplitOptions(RunOptions(args.executor, args.workers, args.cache, args.gpus_per_task), args.out,
                       args.device, args.threads)
    try:
        result = run_split(args.analyzer, (args.model or [None])[0], (args.data or [None])[0], fixed, seeds[0], how,
                           RunContext(on_progress=printer.grid), on_event=printer.cell,
                           extras=lambda r: {"report.html": render_report([r], title=r.title).encode("utf-8")})
    except (KeyboardInterrupt, Cancelled):
        sys.stderr.write(f"\nworkbench: cancelled: {printer.kept} finished cell(s) kept; run the same command "
                         "to resume\n")
        return 130
    run = result.info.get("split", {})
    sys.stderr.write(f"wrote {Path(args.out) / RESULT_DIR}/result.json, arrays.npz, report.html: "
                     f"{run.get('computed', 0)} of {run.get('cells', 0)} cell(s) computed, {run.get('reused', 0)} "
                     f"reused ({run.get('executor')}, {run.get('workers')} worker(s))\n")
    return 0
