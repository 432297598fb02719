"""Transferability split into sweep cells (one per seed x cut) and merged: through the local process pool
with 2 workers it equals the single call bit for bit on the CPU; a re-run computes no cell."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from analyzers.transferability.split import split_cells
from tests.sweep.sweep_helpers import same_result, single_call
from workbench.sweep.engine import RunOptions
from workbench.sweep.split import SplitOptions, run_split

CONFIG = {"dataset": "digits", "cuts": "2,4", "seeds": 2, "epochs": 2, "umap": False, "probe_samples": 200}
#: counts of trained / reused networks: the cells of one seed each retrain its two bases
COUNTS = ("cells_trained", "cells_reused")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def test_split_is_seed_by_cut_and_only_the_view_cell_fits_umap():
    parts = split_cells({**CONFIG, "cuts": "4,2", "view_cut": 0, "umap": True}, 7)
    assert [(p["seed"], p["params"]["cuts"], p["params"]["umap"]) for p in parts] == [
        (7, "2", False), (7, "4", True), (8, "2", False), (8, "4", False)]


def test_split_over_two_workers_equals_the_single_call(tmp_path):
    whole = single_call("transferability", "", None, CONFIG, seed=3)
    how = SplitOptions(RunOptions("local", 2), out=tmp_path)
    merged = run_split("transferability", None, None, CONFIG, 3, how)
    assert merged.info["split"]["executor"] == "local" and merged.info["split"]["cells"] == 4
    assert merged.info["split"]["computed"] == 4
    assert same_result(whole, merged, COUNTS) == []
    assert merged.arrays["acc"].shape == (2, 5, 2) and list(merged.arrays["seeds"]) == [3, 4]
    again = run_split("transferability", None, None, CONFIG, 3, SplitOptions(RunOptions("local", 1), out=tmp_path))
    assert again.info["split"]["computed"] == 0 and again.info["split"]["reused"] == 4
    assert same_result(merged, again) == []


# ---- a data set too easy for the experiment ---------------------------------------------------------

def _outcome(base_b: float, random_frozen: float, anb: float):
    import numpy as np

    from analyzers.transferability import grid as tg

    acc = np.full((1, 5, 2), 0.95, np.float32)
    acc[0, tg.TREATMENTS.index("random_frozen")] = random_frozen
    acc[0, tg.TREATMENTS.index("anb")] = anb
    out = tg.GridOutcome(acc, np.ones_like(acc), np.array([[0.99, base_b]], np.float32), np.ones_like(acc))
    sim = {"cka_diag": np.linspace(0.9, 0.3, 5)[None], "svcca_diag": np.linspace(0.9, 0.5, 5)[None]}
    sc = {"scores": np.array([[-1.0, 0.3], [-1.5, 0.1], [-0.1, 1.0]])}
    return out, sim, sc


@pytest.mark.parametrize("dataset, random_frozen, easy", [("digits", 0.975, True), ("mnist1d", 0.60, False)])
def test_a_data_set_too_easy_is_explained_and_the_failing_control_keeps_failing(dataset, random_frozen, easy):
    from analyzers.transferability import grid as tg
    from analyzers.transferability.checks import checks_and_metrics

    spec = tg.GridSpec(dataset, 3000, (0, 1, 2, 3, 4), (5, 6, 7, 8, 9), (2, 4), (0,), 8, 3e-3, 128)
    out, sim, sc = _outcome(0.99, random_frozen, random_frozen - 0.01)  # AnB below random: the control fails
    info = {}
    metrics, checks = checks_and_metrics(spec, out, sim, sc, info)
    control = next(c for c in checks if c.name == "random_below_transfer")
    assert not control.passed and metrics["random_frozen_gap"] == pytest.approx(0.99 - random_frozen, abs=1e-6)
    assert bool(info["data_note"]) is easy
    if easy:
        assert "digits is too easy" in info["data_note"] and "mnist1d" in info["data_note"]
        assert control.fix == {"dataset": "mnist1d"} and "too easy" in control.message
    else:
        assert control.fix.get("seeds") == 2  # noise: more seeds, not another data set


def test_digits_run_explains_itself_in_its_summary():
    r = single_call("transferability", "", None, {"dataset": "digits", "epochs": 4, "probe_samples": 200})
    assert r.metrics["random_frozen_gap"] <= 0.05 and "digits is too easy" in r.summary()
    control = next(c for c in r.checks if c.name == "random_below_transfer")
    assert control.passed or control.fix == {"dataset": "mnist1d"}


def test_cli_split_reads_data_as_the_run_does(tmp_path, capsys):
    from workbench.cli import main
    from workbench.core.result import Result

    assert main(["sweep", "transferability", "--data", "digits", "--set", "cuts=2", "--set", "epochs=1",
                 "--set", "probe_samples=100", "--split", "--workers", "1", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path)]) == 0
    r = Result.load(tmp_path / "result")
    assert r.analyzer == "transferability" and r.config["dataset"] == "digits" and r.info["dataset"] == "digits"
    assert r.arrays["acc"].shape == (1, 5, 1) and "1 of 1 cell(s) computed" in capsys.readouterr().err
