"""Kills at random points of a save (issue 16): N SIGKILLs (``WB_KILL_SAVES``, default 50) of a process
that keeps saving results into a few folders, first saves and re-runs (``force``) mixed.

After every kill, every folder holds either nothing or a complete result that ``workbench report``'s own
checks and ``Result.load`` read, and it is never older than the last save that process reported done
(no earlier result is lost). At the end one ``workbench report`` over every folder exits 0.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from workbench.core.result import Result
from workbench.report import check_complete

KILLS = int(os.environ.get("WB_KILL_SAVES", "50"))
FOLDERS = 4
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}

# Saves forever: folder k, generation g (unique, increasing across children); a line "k g" is appended to
# the log (fsynced) only after save() returned, so the log is a lower bound of what must be on disk.
_CHILD = textwrap.dedent("""
    import os, random, sys
    import numpy as np
    from workbench.core.result import Result
    root, log, first, folders = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(first)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    print("ready", flush=True)
    g = first
    while True:
        k = rng.randrange(folders)
        n = rng.choice((1000, 30000, 120000))  # arrays of 8 KB .. 1 MB: kills land in every stage
        arr = np.random.default_rng(g).standard_normal(n)
        arr[0] = g
        r = Result("kill_test", data=f"{k}:{g}", metrics={"g": g}, arrays={"a": arr})
        r.save(os.path.join(root, f"f{k}"), force=True)
        os.write(fd, f"{k} {g}\\n".encode())
        os.fsync(fd)
        g += 1
""")


def _committed(log: Path) -> dict[int, int]:
    last: dict[int, int] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = line.split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):  # a line cut by the kill is ignored
            last[int(parts[0])] = max(last.get(int(parts[0]), -1), int(parts[1]))
    return last


def _check(root: Path, log: Path) -> int:
    """Every folder: none, or complete and not older than its last reported save. Returns how many
    hidden leftovers (temporary folders, lock files) the kill left for the next writer to clear."""
    last = _committed(log)
    for k in range(FOLDERS):
        folder = root / f"f{k}"
        if not folder.exists():
            assert k not in last, f"{folder} lost: generation {last[k]} was saved"
            continue
        r = Result.load(check_complete(folder))
        kk, g = (int(v) for v in r.data.split(":"))
        assert kk == k and r.metrics["g"] == g and r.arrays["a"][0] == g, (folder, r.data)
        assert g >= last.get(k, -1), f"{folder} holds generation {g}, older than the saved {last[k]}"
    return sum(1 for p in root.iterdir() if p.name.startswith("."))


def test_sigkill_at_random_points_of_saves_loses_nothing(tmp_path):
    root, log = tmp_path / "results", tmp_path / "saved.log"
    root.mkdir()
    rng = random.Random(16)
    mid_save = 0
    for i in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), str(log), str(i * 1_000_000), str(FOLDERS)],
                                 env=ENV, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
        mid_save += _check(root, log) > 0
    saved = _committed(log)
    print(f"{KILLS} kills, {mid_save} inside a save, {sum(1 for _ in log.open())} saves reported done")
    assert len(saved) == FOLDERS  # every folder was written at least once
    if KILLS >= 20:  # the kills really landed inside saves, not only between them
        assert mid_save >= KILLS // 5, mid_save
    # one more save into each folder clears what the kills left; then `workbench report` reads them all
    for k in range(FOLDERS):
        Result("kill_test", data=f"{k}:{10**9}", metrics={"g": 10**9}, arrays={"a": [float(10**9)]}).save(
            root / f"f{k}", force=True)
    assert sorted(p.name for p in root.iterdir()) == [f"f{k}" for k in range(FOLDERS)]
    p = subprocess.run([sys.executable, "-m", "workbench.cli", "report", *[str(root / f"f{k}") for k in range(FOLDERS)],
                        "-o", str(tmp_path / "all.html")], capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode == 0, p.stderr
