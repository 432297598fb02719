"""Memory budget per run (issue 16): a small user file that names a lot of data must not drive a CLI run
past the documented budget. The issue's case: a 0.4 MB .mat holding 5000 EEG windows made an LRP run
peak at 6.7 GB. Peak RSS is measured with ``/usr/bin/time -v`` (or ``getrusage`` of a wrapper where
that is missing) against the documented bound: the peak of a one-window run plus the run's memory budget
(``RunContext.memory_budget_mb``, 1024 MB by default; README, reliability table)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from workbench.runtime.context import MEMORY_BUDGET_MB

ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
_WRAP = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
         "sys.stderr.write(f'Maximum resident set size (kbytes): "
         "{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n'); sys.exit(rc)")


def _mat(path: Path, n: int) -> Path:
    """``n`` windows (30 x 384) of Cui et al.'s layout, compressible: 5000 windows are a 0.2 MB file."""
    x = np.zeros((n, 30, 384), np.float32)
    x[:, :, ::64] = (np.arange(n) % 7)[:, None, None]
    scipy.io.savemat(str(path), {"EEGsample": x, "substate": (np.arange(n) % 2)[:, None],
                                 "subindex": np.ones((n, 1))}, do_compression=True)
    return path


def _run(*args: str) -> tuple[int, str, int]:
    """(exit code, stderr without the measurement, peak RSS in MB) of one CLI run."""
    cli = [sys.executable, "-m", "workbench.cli", "run", "lrp", "--model", "eeg_compact.synth", "--quiet", *args]
    time_v = shutil.which("time", path="/usr/bin")
    cmd = [time_v, "-v", *cli] if time_v else [sys.executable, "-c", _WRAP, *cli]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    assert peak, p.stderr[-2000:]
    ours = "\n".join(x for x in p.stderr.splitlines() if x.startswith("workbench") or "Traceback" in x)
    rc = p.returncode if time_v is None or "Exit status" not in p.stderr else \
        int(re.search(r"Exit status: (\d+)", p.stderr).group(1))
    return rc, ours, int(peak.group(1)) // 1024


@pytest.mark.zoo("eeg_compact.synth")
def test_a_5000_window_mat_stays_under_the_memory_budget(tmp_path):
    small, big = _mat(tmp_path / "one.mat", 1), _mat(tmp_path / "w5000.mat", 5000)
    assert big.stat().st_size < 400_000  # the "0.4 MB .mat"
    rc, err, base = _run("--data", str(small), "--out", str(tmp_path / "one"))
    assert rc == 0, err
    rc, err, peak = _run("--data", str(big), "--out", str(tmp_path / "big"))
    print(f"one window: {base} MB peak; 5000 windows: {peak} MB peak, exit {rc}; budget {MEMORY_BUDGET_MB} MB")
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"memory budget of {MEMORY_BUDGET_MB:,} MB" in err and "--memory-budget-mb" in err, err
    assert peak < base + MEMORY_BUDGET_MB, (base, peak)
    assert not (tmp_path / "big").exists()
    # what fits runs, and stays under its own (smaller) budget: 600 windows under 400 MB
    part = _mat(tmp_path / "w600.mat", 600)
    rc, err, peak = _run("--data", str(part), "--out", str(tmp_path / "part"), "--memory-budget-mb", "400")
    print(f"600 windows under a 400 MB budget: {peak} MB peak, exit {rc}")
    assert rc == 0, err
    assert peak < base + 400, (base, peak)
