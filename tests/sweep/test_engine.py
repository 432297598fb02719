"""Running sweeps: cache reuse, local pool == in-process bit for bit, failures, cancel, the aggregate."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sweep_helpers import same_aggregate, same_cells, tiny_spec

from workbench.core.errors import Cancelled
from workbench.core.result import Result
from workbench.runtime.context import RunContext
from workbench.sweep.engine import RESULT_DIR, RunOptions, run_sweep


def _run(spec, out, workers=1, ctx=None, cache=None):
    events = Counter()
    result = run_sweep(spec, out, RunOptions("local", workers, cache), ctx,
                       on_event=lambda kind, cell, data: events.update([kind]))
    return result, events


def _cells(out):
    return {p.name: Result.load(p) for p in (out / "cells").iterdir() if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq")
    result, events = _run(tiny_spec(), out)
    return out, result, events


def test_a_rerun_computes_no_cell(sequential, tmp_path):
    out, first, events = sequential
    assert events["done"] == 8 and events["reused"] == 0
    again, events2 = _run(tiny_spec(), out)
    assert events2["done"] == 0 and events2["reused"] == 8 and again.info["run"]["computed"] == 0
    assert same_aggregate(first, again) == []
    # a wider grid over a shared cache reuses the cells it has in common with the first one
    small = tiny_spec(seeds=(0,), criteria=("weight",))
    _, events3 = _run(small, tmp_path, cache=tmp_path / "shared")
    assert (events3["reused"], events3["done"]) == (0, 2)
    small.seeds = [0, 1]
    _, events4 = _run(small, tmp_path, cache=tmp_path / "shared")
    assert (events4["reused"], events4["done"]) == (2, 2)
    assert len(list((tmp_path / "shared").iterdir())) == 4


def test_local_pool_equals_in_process_bit_for_bit(sequential, tmp_path):
    out, first, _ = sequential
    pooled, events = _run(tiny_spec(seeds=(1,)), tmp_path, workers=2)
    assert events["done"] == 4 and pooled.info["run"]["executor"] == "local"
    assert pooled.info["run"]["workers"] == 2
    mine = _cells(tmp_path)
    assert len(mine) == 4 and same_cells({k: v for k, v in _cells(out).items() if k in mine}, mine) == []


def test_a_damaged_cell_is_recomputed(sequential, tmp_path):
    import shutil

    out, first, _ = sequential
    shutil.copytree(out / "cells", tmp_path / "cells")
    victim = sorted(p for p in (tmp_path / "cells").iterdir() if not p.name.startswith("."))[0]
    (victim / "result.json").write_text("{not json")
    again, events = _run(tiny_spec(), tmp_path / "out", cache=tmp_path / "cells")
    assert (events["reused"], events["done"]) == (7, 1)
    assert Result.load(victim).analyzer == "lrp_pruning" and same_aggregate(first, again) == []


def test_aggregate_statistics_figures_and_round_trip(sequential):
    out, result, _ = sequential
    names = result.info["metric_names"]
    assert "acc_{criteria}_at_{rates}" in names and result.info["headline"] == "acc_{criteria}_at_{rates}"
    j = names.index("acc_{criteria}_at_{rates}")
    values, groups = result.arrays["values"][:, j], result.arrays["cell_group"]
    for g in range(len(result.info["groups"])):
        v = values[groups == g]
        assert len(v) == 2
        assert result.arrays["mean"][g, j] == np.mean(v)
        assert np.isclose(result.arrays["sd"][g, j], np.std(v, ddof=1))
    loaded = Result.load(out / RESULT_DIR)
    assert type(loaded).__name__ == "SweepResult" and same_aggregate(result, loaded) == []
    figs = loaded.figures()
    kinds = [f.data[0].type for f in figs]
    assert kinds == ["scatter", "heatmap", "table"]
    heat = figs[1].data[0]
    assert list(heat.x) == ["20", "40"] and list(heat.y) == ["weight", "random"]
    assert np.isfinite(np.asarray(heat.z, dtype=float)).all()
    assert len(loaded.cell_table()) == 8 and len(loaded.table()) == 4
    from workbench.report import render_report

    html = render_report([loaded], "sweep")
    assert "acc_{criteria}_at_{rates}" in html and "cells_complete" in html


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    spec = tiny_spec(seeds=(0,), rates=("20", "250"), criteria=("weight",))
    result, events = _run(spec, tmp_path)
    assert events["done"] == 1 and events["failed"] == 1
    assert not result.passed and result.metrics["cells_failed"] == 1
    assert "bad_config" in next(iter(result.info["failed"].values()))


def test_cancel_stops_the_sweep_and_keeps_finished_cells(tmp_path):
    ctx = RunContext()
    seen = []

    def on_event(kind, cell, data):
        if kind == "done":
            seen.append(cell.key)
            ctx.cancel.cancel()

    with pytest.raises(Cancelled):
        run_sweep(tiny_spec(), tmp_path, RunOptions("local", 1), ctx, on_event=on_event)
    assert len(seen) == 1 and set(_cells(tmp_path)) == set(seen)
