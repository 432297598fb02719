"""Result writes (issue 16): atomic, exclusive result folders; nothing lost, no link followed, one line.

Covers the classes: an existing result (refused without force, kept until the new one is complete with
it), concurrent writers of one folder, planted symbolic links (the folder, result.json, report.html, the
lock file, `report -o`), impossible destinations (a file, under /proc, under a regular file, a folder of
foreign files), and incomplete folders that `workbench report` must refuse with one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workbench import cli
from workbench.core.result import Result
from workbench.core.result_folder import FolderBusyError, OutputError, ResultFolder
from workbench.report import check_complete

ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}


def _result(tag: str, n: int = 64) -> Result:
    return Result("write_test", model="m.x", data=tag, metrics={"v": 1.0},
                  arrays={"a": np.random.default_rng(len(tag)).standard_normal(n)})


def _tag(folder: Path) -> str:
    return Result.load(check_complete(folder)).data


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture
def no_compute(monkeypatch):
    """The CLI's analyzer run, replaced: validation failures must come before it; successes get a small
    result at once (what is under test is the folder, not an analyzer)."""
    import workbench.runtime as runtime

    calls = []

    def fake_run(spec, ctx):
        calls.append(spec)
        if os.environ.get("WB_TEST_FORBID_RUN"):
            raise AssertionError("computed before --out was checked")
        return _result(f"run-{len(calls)}")

    monkeypatch.setattr(runtime, "run", fake_run)
    return calls


def _cli(capsys, *args) -> tuple[int, str]:
    rc = cli.main(["run", "lrp", "--model", "toy_cnn.test", "--quiet", *args])
    return rc, capsys.readouterr().err


# ---- an existing result ---------------------------------------------------------------------------
def test_existing_result_is_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "r"
    _result("first").save(out)
    with pytest.raises(OutputError, match="already holds a result"):
        _result("second").save(out)
    assert _tag(out) == "first"
    _result("third").save(out, force=True)
    assert _tag(out) == "third" and _hidden(tmp_path) == []  # no lock, temporary or old folder left


def test_force_keeps_the_old_result_until_the_new_one_is_complete(tmp_path):
    out = tmp_path / "r"
    _result("old").save(out)
    seen = []

    def writer(f):  # runs while the new result is being written: the old one must still be whole
        seen.append(_tag(out))
        f.write(b"x" * 1000)

    new = _result("new")
    files, index = new.folder_files()
    with ResultFolder(out, force=True) as folder:
        seen.append(_tag(out))
        folder.commit({**files, "report.html": writer}, index)
    assert seen == ["old", "old"] and _tag(out) == "new"

    def broken(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError), ResultFolder(out, force=True) as folder:  # a write failing half-way
        folder.commit({**_result("lost").folder_files()[0], "report.html": broken}, index)
    assert _tag(out) == "new" and _hidden(tmp_path) == []


def test_cli_refuses_an_existing_result_before_computing_and_replaces_it_with_force(
        tmp_path, capsys, no_compute, monkeypatch):
    out = tmp_path / "r"
    _result("mine").save(out)
    monkeypatch.setenv("WB_TEST_FORBID_RUN", "1")
    rc, err = _cli(capsys, "--out", str(out))
    assert rc == 2 and "already holds a result" in _one_line(err) and "--force" in err
    assert _tag(out) == "mine" and no_compute == []
    monkeypatch.delenv("WB_TEST_FORBID_RUN")
    rc, err = _cli(capsys, "--out", str(out), "--force")
    assert rc == 0, err
    assert _tag(out) == "run-1" and sorted(p.name for p in out.iterdir()) == ["arrays.npz", "report.html",
                                                                              "result.json"]
    doc = json.loads((out / "result.json").read_text())
    assert doc["files"] == {"arrays.npz": (out / "arrays.npz").stat().st_size,
                            "report.html": (out / "report.html").stat().st_size}


# ---- concurrent writers ---------------------------------------------------------------------------
_DRIVER = textwrap.dedent("""
    import sys, time
    import workbench.runtime as runtime
    from workbench.core.result import Result
    from workbench import cli
    def slow_run(spec, ctx):  # long enough that all four runs overlap; the lock is what is under test
        time.sleep(2.0)
        return Result("write_test", data=sys.argv[1], metrics={"v": 1.0}, arrays={"a": [1.0, 2.0]})
    runtime.run = slow_run
    raise SystemExit(cli.main(["run", "lrp", "--model", "toy_cnn.test", "--quiet", "--out", sys.argv[2]]))
""")


def test_four_concurrent_runs_into_one_out_one_wins_the_others_exit_2(tmp_path):
    out = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", _DRIVER, f"writer-{i}", str(out)], env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
    done = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    winners = [i for i, (rc, _) in enumerate(done) if rc == 0]
    assert len(winners) == 1, done
    for i, (rc, err) in enumerate(done):
        if i != winners[0]:
            line = _one_line(err)
            assert rc == 2 and ("another run is writing" in line or "already holds a result" in line), err
    assert _tag(out) == f"writer-{winners[0]}" and _hidden(tmp_path) == []


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    out = tmp_path / "r"
    with ResultFolder(out) as first:
        with pytest.raises(FolderBusyError, match="another run is writing"):
            _result("second").save(out)
        first.commit(*_result("first").folder_files())
    assert _tag(out) == "first" and _hidden(tmp_path) == []


# ---- symbolic links -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["result.json", "report.html", "arrays.npz"])
def test_links_planted_in_a_result_folder_are_never_written_through(tmp_path, name):
    out, victim = tmp_path / "r", tmp_path / "victim.txt"
    _result("mine").save(out, extras={"report.html": b"<html></html>"})
    victim.write_text("precious")
    (out / name).unlink()
    (out / name).symlink_to(victim)
    for force in (False, True):
        with pytest.raises(OutputError, match="symbolic link"):
            _result("new").save(out, force=force)
    assert victim.read_text() == "precious" and (out / name).is_symlink()


def test_a_linked_folder_and_a_planted_lock_link_are_refused(tmp_path, capsys, no_compute, monkeypatch):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    monkeypatch.setenv("WB_TEST_FORBID_RUN", "1")
    rc, err = _cli(capsys, "--out", str(tmp_path / "link"), "--force")
    assert rc == 2 and "symbolic link" in _one_line(err) and list(target.iterdir()) == []
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".locked.wb-lock").symlink_to(victim)
    with pytest.raises(OutputError, match="cannot lock"):
        _result("x").save(tmp_path / "locked")
    assert victim.read_text() == "precious" and not (tmp_path / "locked").exists()


def test_report_output_link_or_folder_is_refused(tmp_path, capsys):
    res = tmp_path / "r"
    _result("mine").save(res)
    victim = tmp_path / "victim.html"
    victim.write_text("precious")
    (tmp_path / "link.html").symlink_to(victim)
    for target, word in ((tmp_path / "link.html", "symbolic link"), (tmp_path, "folder")):
        assert cli.main(["report", str(res), "-o", str(target)]) == 2
        assert word in _one_line(capsys.readouterr().err)
    assert victim.read_text() == "precious"
    assert cli.main(["report", str(res), "-o", str(tmp_path / "ok.html")]) == 0
    assert (tmp_path / "ok.html").stat().st_size > 1000 and not [p for p in _hidden(tmp_path) if "tmp" in p]


# ---- impossible destinations, checked before computing -------------------------------------------
def test_out_that_cannot_hold_a_folder_exits_2_before_computing(tmp_path, capsys, no_compute, monkeypatch):
    monkeypatch.setenv("WB_TEST_FORBID_RUN", "1")
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    cases = [(a_file, "is a file"), (a_file / "sub", "under a file"), (a_file / "a" / "b", "under a file"),
             ("/proc/wb_out", "/proc"), ("/proc/self/wb_out", "/proc"), ("/sys/wb_out", "/sys"),
             (foreign, "other files")]
    for out, word in cases:
        for extra in ((), ("--force",)):
            rc, err = _cli(capsys, "--out", str(out), *extra)
            assert rc == 2 and word in _one_line(err), (out, err)
    assert no_compute == [] and a_file.read_text() == "mine" and (foreign / "thesis.tex").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "file.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_unwritable_out_exits_2_before_computing(tmp_path, capsys, no_compute, monkeypatch):
    monkeypatch.setenv("WB_TEST_FORBID_RUN", "1")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    rc, err = _cli(capsys, "--out", str(ro / "out"))
    assert rc == 2 and "cannot write" in _one_line(err)


def test_a_failed_run_leaves_no_folder_behind(tmp_path, capsys, monkeypatch):
    import workbench.runtime as runtime
    from workbench.core.errors import DataError

    def failing(spec, ctx):
        raise DataError("bad data")

    monkeypatch.setattr(runtime, "run", failing)
    rc, err = _cli(capsys, "--out", str(tmp_path / "a" / "b" / "out"))
    assert rc == 2 and "bad data" in _one_line(err) and list(tmp_path.iterdir()) == []


# ---- incomplete folders ---------------------------------------------------------------------------
def test_report_refuses_incomplete_folders_with_one_line(tmp_path, capsys):
    good = tmp_path / "good"
    _result("mine").save(good)
    legacy = tmp_path / "legacy"  # what a kill left with the old non-atomic save: a 0-byte arrays.npz
    legacy.mkdir()
    doc = json.loads((good / "result.json").read_text())
    (legacy / "result.json").write_text(json.dumps({k: v for k, v in doc.items() if k != "files"}))
    (legacy / "arrays.npz").write_bytes(b"")
    cut = tmp_path / "cut"
    _result("cut").save(cut)
    data = (cut / "arrays.npz").read_bytes()
    (cut / "arrays.npz").write_bytes(data[: len(data) // 2])
    empty_json = tmp_path / "empty"
    empty_json.mkdir()
    (empty_json / "result.json").write_bytes(b"")
    tmp_dir = tmp_path / ".good.wb-tmp-1-abcd"
    tmp_dir.mkdir()
    for folder, word in ((legacy, "arrays.npz is missing or empty"), (cut, "arrays.npz is"),
                         (empty_json, "result.json is empty"), (tmp_dir, "temporary folder")):
        assert cli.main(["report", str(good), str(folder), "-o", str(tmp_path / "r.html")]) == 2
        line = _one_line(capsys.readouterr().err)
        assert word in line and ("incomplete" in line or "temporary" in line), line
    assert not (tmp_path / "r.html").exists()
    assert cli.main(["report", str(good), "-o", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-probe"])
def test_the_write_probe_leaves_nothing_and_clears_a_killed_writers_probe(tmp_path, monkeypatch, tmpfile):
    # CI once found `.wb-probe-*` folders left beside results by processes killed inside the write probe
    if not tmpfile:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f".wb-probe-{int(dead.stdout)}-deadbeef").mkdir()  # what a kill inside a named probe leaves
    (tmp_path / f".wb-probe-{os.getpid()}-livebeef").mkdir()  # a live writer's probe is not ours to remove
    _result("one").save(tmp_path / "r")
    assert _hidden(tmp_path) == [f".wb-probe-{os.getpid()}-livebeef"]
    assert _tag(tmp_path / "r") == "one"
