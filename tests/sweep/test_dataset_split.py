"""A data-set run (a per-sample analyzer over a data set) on sweep cells, one per chunk of samples: it equals
the single data-set run (per-sample arrays bit for bit), and a run that lost cells (killed half-way)
recomputes only those cells."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sweep_helpers import single_call

from workbench.sweep.chunks import chunk_ids
from workbench.sweep.engine import RunOptions
from workbench.sweep.split import SplitOptions, run_split

MODEL, DATA = "digits_vgg.sk", "digits:test:0-299"
CONFIG = {"method": "saliency", "sanity_check": False}


def _split(out, workers):
    return run_split("attribution", MODEL, DATA, CONFIG, 0, SplitOptions(RunOptions("local", workers), out=out))


def _same(a, b, rel=0.0) -> list[str]:
    diffs = [n for n in a.arrays if not np.array_equal(a.arrays[n], b.arrays.get(n), equal_nan=True)]
    diffs += [f"metric {k}" for k, v in a.metrics.items() if k not in b.metrics
              or not np.isclose(v, b.metrics[k], rtol=rel, atol=0, equal_nan=True)]
    ca, cb = [(c.name, c.passed) for c in a.checks], [(c.name, c.passed) for c in b.checks]
    return diffs + ([f"checks {ca} != {cb}"] if ca != cb else []) + (["arrays"] if set(a.arrays) != set(b.arrays)
                                                                     else [])


def test_chunks_are_the_runners_and_name_their_samples():
    chunks = chunk_ids(DATA, "image", 128)
    assert [len(c.split(",")) for c in chunks] == [128, 128, 44] and chunks[0].startswith("digits:21,24,")
    assert [len(c.split(",")) for c in chunk_ids("digits:test:0-128", "image", 128)] == [129]  # no 1-sample chunk
    assert chunk_ids("digits:17", "image", 128) is None


def test_data_set_run_on_cells_equals_the_single_run_and_resumes(tmp_path):
    whole = single_call("attribution", MODEL, DATA, CONFIG)
    first = _split(tmp_path, 2)
    assert first.info["split"]["computed"] == 3 and first.info["dataset"]["chunk_sizes"] == [128, 128, 44]
    assert first.data == DATA and first.metrics["n_samples"] == 300
    # per-sample arrays bit for bit; a set's mean over chunk means may move in the last bit (weights re-applied)
    assert _same(whole, first, rel=1e-12) == []
    cells = sorted(p for p in (tmp_path / "cells").iterdir() if not p.name.startswith("."))
    shutil.rmtree(cells[1])  # the state a kill leaves: some chunks finished, one not
    again = _split(tmp_path, 1)
    assert (again.info["split"]["computed"], again.info["split"]["reused"]) == (1, 2)
    assert _same(first, again) == []


@pytest.mark.parametrize("analyzer", ["transferability", "learning_stop"])
def test_an_analyzer_that_does_not_split_says_so(analyzer):
    from workbench.core.errors import ConfigError
    from workbench.sweep.split import hooks_of

    if analyzer == "transferability":
        assert hooks_of(analyzer).split is not None
    else:
        with pytest.raises(ConfigError, match="does not split"):
            hooks_of(analyzer)


def test_cli_split_writes_the_analyzers_own_result(tmp_path, capsys):
    from workbench.cli import main
    from workbench.core.result import Result

    base = ["sweep", "attribution", "--model", MODEL, "--data", "digits:test:0-199", "--set", "method=saliency",
            "--set", "sanity_check=false", "--device", "cpu", "--split", "--workers", "1", "--quiet"]
    assert main([*base, "--grid", "target=1,2", "--out", str(tmp_path / "bad")]) == 2
    assert "--split runs one call" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "out")]) == 0
    assert "2 of 2 cell(s) computed" in capsys.readouterr().err
    r = Result.load(tmp_path / "out" / "result")
    assert r.analyzer == "attribution" and r.data == "digits:test:0-199" and r.metrics["n_samples"] == 200
    assert (tmp_path / "out" / "result" / "report.html").is_file()


def test_an_interrupted_data_set_run_resumes_with_the_chunks_it_finished(tmp_path):
    from workbench.core.errors import Cancelled
    from workbench.runtime.context import RunContext

    ctx, finished = RunContext(), []

    def stop_after_first(kind, cell, data):
        if kind == "done":
            finished.append(cell.key)
            ctx.cancel.cancel()

    how = SplitOptions(RunOptions("local", 1), out=tmp_path)
    with pytest.raises(Cancelled):
        run_split("attribution", MODEL, DATA, CONFIG, 0, how, ctx, on_event=stop_after_first)
    assert len(finished) == 1
    computed = []
    resumed = run_split("attribution", MODEL, DATA, CONFIG, 0, how,
                        on_event=lambda kind, cell, data: computed.append(cell.key) if kind == "done" else None)
    assert len(computed) == 2 and finished[0] not in computed
    assert (resumed.info["split"]["computed"], resumed.info["split"]["reused"]) == (2, 1)
    assert resumed.metrics["n_samples"] == 300


def test_wb_sweep_split_returns_the_analyzers_result(tmp_path):
    import workbench as wb
    from workbench.core.errors import ConfigError

    r = wb.sweep("attribution", model=MODEL, data="digits:test:0-199", split=True, workers=1, out=tmp_path,
                 method="saliency", sanity_check=False)
    assert type(r).__name__ == "AttributionResult" and r.metrics["n_samples"] == 200
    assert r.info["split"]["cells"] == 2 and (tmp_path / "result" / "result.json").is_file()
    with pytest.raises(ConfigError, match="one call"):
        wb.sweep("attribution", model=MODEL, data="digits:test:0-199", split=True, seeds="0-1", out=tmp_path)
