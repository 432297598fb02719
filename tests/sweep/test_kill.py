"""A sweep SIGKILLed half-way resumes: finished cells are not recomputed and the result equals an
uninterrupted run; its pool workers and fork server leave by themselves. Also checks that the cell keys a
separate process wrote match the ones computed here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sweep_helpers import MODEL, same_aggregate, tiny_spec

from workbench.sweep.engine import RunOptions, plan, run_sweep

TOTAL = 8


def _done(out: Path) -> set[str]:
    cells = out / "cells"
    # hidden names are the writer's temporary folders (a kill may leave one: it is not a finished cell)
    return ({p.name for p in cells.iterdir() if not p.name.startswith(".") and (p / "result.json").is_file()}
            if cells.is_dir() else set())


def _session(sid: int) -> list[int]:
    """Live processes of the session ``sid`` (the sweep was started in its own session)."""
    pids = []
    for p in Path("/proc").iterdir():
        try:
            stat = (p / "stat").read_text()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if p.name.isdigit() and int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(p.name))
    return pids


def _start(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "workbench.cli", "sweep", "lrp_pruning", "--model", MODEL,
           "--grid", "criteria=weight,random", "--grid", "rates=20,40", "--set", "reference_per_class=3",
           "--seeds", "0-1", "--device", "cpu", "--workers", "2", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONHASHSEED": "123"}  # another hash seed: keys must not depend on it
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def test_sigkill_half_way_then_resume(tmp_path):
    out = tmp_path / "killed"
    proc = _start(out)
    deadline = time.monotonic() + 300
    while len(_done(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: its pool workers and fork server must follow by themselves
    proc.wait(timeout=60)
    try:
        deadline = time.monotonic() + 60
        while _session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _session(proc.pid) == [], "pool processes outlived the killed sweep"
    finally:
        if _session(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)  # never leave the test's own processes behind
    before = _done(out)
    assert 2 <= len(before) < TOTAL, (len(before), proc.stderr.read().decode()[-500:])

    spec = tiny_spec()
    cells, _, _ = plan(spec)
    written = json.loads((out / "sweep.json").read_text())["cells"]
    assert [c["key"] for c in written] == [c.key for c in cells]  # the same keys from another process

    computed, events = [], Counter()

    def on_event(kind, cell, data):
        events.update([kind])
        if kind == "done":
            computed.append(cell.key)

    resumed = run_sweep(spec, out, RunOptions("local", 1), on_event=on_event)
    assert events["reused"] == len(before) and not set(computed) & before
    assert len(computed) == TOTAL - len(before) and resumed.metrics["cells_done"] == TOTAL

    whole = run_sweep(spec, tmp_path / "whole", RunOptions("local", 1))
    assert same_aggregate(whole, resumed) == []
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]  # no temporary folder left
