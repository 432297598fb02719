"""Issue 16, untrusted reads: a generated corpus per class (tests/reliability/corpus_reads.py) goes through
the real CLI in a child process with a bounded address space; every case must end in exit 2 with exactly
one stderr line and no traceback, with the child's peak memory barely above its warmed-up size, and the
FIFO cases must not hang. Plus the safe reader's own bounds and label escaping on load."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.core.errors import DataError, InputTooLargeError
from workbench.io.safe import read_fd, read_file

ROOT = Path(__file__).resolve().parents[2]
TYPED = re.compile(r"^workbench: error: [a-z_]+: ")  # a WorkbenchError's code, not the CLI's catch-all line
RSS_GROWTH_MAX = 300 << 20  # bombs claim gigabytes; a refusal must stay far below that
#: the smallest corpus each class must keep (the counts go to the README's reliability table)
MIN_CASES = {"special_files": 60, "bombs": 21, "schema": 70, "safetensors": 30}


def _run_class(cls: str, tmp_path: Path) -> dict:
    out = tmp_path / "out.json"
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore", "WORKBENCH_DEBUG": "1"}  # an untyped exception escapes as itself
    proc = subprocess.run([sys.executable, "-m", "tests.reliability.corpus_reads", cls, str(tmp_path / "c"), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # a hang fails here
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("cls", list(MIN_CASES))
def test_every_case_of_the_class_ends_in_one_line_and_exit_2(cls, tmp_path):
    report = _run_class(cls, tmp_path)
    rows = report["cases"]
    bad = [f"{r['case']}: rc={r['rc']} tb={r['traceback']!r} stderr={r['stderr'][:3]}" for r in rows
           if r["rc"] != 2 or r["traceback"] or len(r["stderr"]) != 1
           or not TYPED.match(r["stderr"][0])]
    assert bad == [], "\n".join(bad)
    assert len(rows) >= MIN_CASES[cls]
    assert report["rss_growth"] < RSS_GROWTH_MAX, f"peak RSS grew by {report['rss_growth'] >> 20} MB"
    print(f"{cls}: {len(rows)}/{len(rows)} refused with one line")


def test_the_reader_is_bounded_even_when_the_size_lies(tmp_path):
    r, w = os.pipe()  # a descriptor whose size says 0 and that yields more: only limit + 1 bytes are taken
    os.write(w, b"x" * 5000)
    with pytest.raises(InputTooLargeError):
        read_fd(r, 1000, "pipe")
    assert len(os.read(r, 10000)) == 5000 - 1001  # the rest was never read
    os.close(r)
    os.close(w)
    p = tmp_path / "ok.bin"
    p.write_bytes(b"abc")
    assert read_file(p, 3) == b"abc"
    with pytest.raises(InputTooLargeError):
        read_file(p, 2)
    link = tmp_path / "link.bin"
    link.symlink_to(p)
    assert read_file(link, 3) == b"abc"
    with pytest.raises(DataError, match="symbolic link"):
        read_file(link, 3, nofollow=True)
    with pytest.raises(DataError, match="FIFO"):
        os.mkfifo(tmp_path / "f")
        read_file(tmp_path / "f", 3)
    with pytest.raises(DataError, match="directory"):
        read_file(tmp_path, 3)
    with pytest.raises(DataError, match="character device"):
        read_file("/dev/zero", 3)


def test_a_hand_edited_label_is_escaped_when_the_note_is_read(tmp_path, monkeypatch, capsys):
    from safetensors.torch import save

    from workbench.cli import main
    from workbench.core.cards import get_card

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    data = save({k: v.contiguous() for k, v in get_card("toy_mlp.moons").build().state_dict().items()})
    src = tmp_path / "w.safetensors"
    src.write_bytes(data)
    assert main(["zoo", "add", "toy_mlp.moons", str(src), "--label", "plain"]) == 0
    card_id = capsys.readouterr().out.strip()
    note = next((tmp_path / "user_weights").glob("*.json"))
    meta = json.loads(note.read_text())
    meta["label"] = "<img src=x onerror=alert(1)>"
    note.write_text(json.dumps(meta))
    assert main(["zoo", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    shown = json.dumps(rows[card_id])
    assert "<" not in shown and ">" not in shown
    assert "_img src_x onerror_alert_1__" in shown


def test_result_arrays_round_trip_through_the_bounded_reader(tmp_path):
    from workbench.core.result import Check, Result

    arrays = {"f": np.arange(12.0).reshape(3, 4), "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
              "text": np.array(["ab", "c"]), "empty": np.zeros((0, 5), np.float32), "flags": np.array([True, False]),
              "big_endian": np.arange(4, dtype=">i4"), "scalar": np.float64(3.5)}
    r = Result("probe", metrics={"m": float("nan")}, checks=[Check("c", False, None, float("inf"), "x")],
               arrays=arrays)
    back = Result.load(r.save(tmp_path / "r"))
    for k, a in r.arrays.items():
        assert back.arrays[k].dtype == a.dtype and back.arrays[k].shape == a.shape and np.array_equal(back.arrays[k], a)
    assert np.isnan(back.metrics["m"]) and back.checks[0].threshold == float("inf")
