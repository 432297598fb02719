"""Data-set runs: a per-sample analyzer over many samples in chunks (workbench/runtime/dataset_run.py):
per-sample arrays, aggregates equal to a per-sample loop, checks over the whole set, cancel."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.errors import Cancelled
from workbench.core.result import Check, Result
from workbench.runtime import RunContext, RunSpec, run
from workbench.runtime import dataset_run as dr

IG = {"method": "integrated_gradients", "n_steps": 8, "sanity_check": False}


def test_a_set_in_chunks_equals_a_per_sample_loop(toy_card, monkeypatch):
    monkeypatch.setattr(dr, "CHUNK_SAMPLES", 4)
    seen = []
    ctx = RunContext(on_progress=lambda f, m: seen.append((f, m)))
    r = run(RunSpec("attribution", toy_card.id, "digits:test:0-9", dict(IG), batch_size=2), ctx)
    ids = r.info["ids"]
    assert r.info["dataset"]["chunks"] == 3 and r.info["dataset"]["chunk_sizes"] == [4, 4, 2]
    assert len(ids) == 10 and r.arrays["attr_integrated_gradients"].shape == (10, 16, 16)
    assert r.arrays["completeness_gap"].shape == (10,) and r.metrics["n_samples"] == 10
    singles = [run(RunSpec("attribution", toy_card.id, i, dict(IG))) for i in ids]
    loop_maps = np.concatenate([s.arrays["attr_integrated_gradients"] for s in singles])
    loop_gap = np.concatenate([s.arrays["completeness_gap"] for s in singles])
    assert np.allclose(r.arrays["attr_integrated_gradients"], loop_maps, atol=1e-5)
    assert np.allclose(r.metrics["completeness_gap_mean"], loop_gap.mean(), rtol=1e-4)
    assert np.allclose(r.metrics["completeness_gap_sd"], loop_gap.std(ddof=1), rtol=1e-3)
    assert np.isclose(r.metrics["completeness_gap"], loop_gap.max(), rtol=1e-4)  # rule "max"
    assert r.metrics["completeness_ok_fraction"] == pytest.approx((loop_gap < 0.01).mean())
    labels = np.array(r.info["labels"])
    for k in np.unique(labels):
        assert r.metrics[f"completeness_gap_mean_class_{k}"] == pytest.approx(loop_gap[labels == k].mean(), rel=1e-4)
    check = next(c for c in r.checks if c.name == "ig_completeness")
    assert check.passed == bool((loop_gap < 0.01).all()) and "chunks" in check.message
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # one bar over the whole set
    assert any("samples 5-8/10" in m for _, m in seen)


def test_one_sample_runs_as_before(toy_card):
    r = run(RunSpec("attribution", toy_card.id, "digits:34", dict(IG)))
    assert "dataset" not in r.info and "n_samples" not in r.metrics


def test_cancel_stops_between_and_inside_chunks(toy_card, monkeypatch):
    monkeypatch.setattr(dr, "CHUNK_SAMPLES", 2)
    ctx = RunContext()
    ctx.on_progress = lambda f, m: ctx.cancel.cancel() if f > 0.25 else None
    with pytest.raises(Cancelled):
        run(RunSpec("attribution", toy_card.id, "digits:test:0-7", dict(IG), batch_size=1), ctx)
    calls = []

    def chunk(ids, sub):
        calls.append(ids)
        ctx2.cancel.cancel()
        return Result("x", arrays={"a": np.zeros(len(ids))}), [None] * len(ids)

    ctx2 = RunContext()
    with pytest.raises(Cancelled):
        dr.run_chunks(dr.Plan(["a", "b", "c", "d"], chunk, chunk=2), ctx2, object)
    assert calls == [["a", "b"]]


class _Rules:
    aggregate = {"worst": "max", "first_*": "first"}


def test_merge_rules_for_arrays_metrics_and_checks():
    def chunk(k, n, passed):
        return Result("x", metrics={"worst": float(k), "first_id": 10.0 + k, "avg": float(k)},
                      checks=[Check("c", passed, float(k), 1.0, "msg")],
                      arrays={"per": np.full(n, k, np.float64), "ok": np.arange(n) < 1,
                              "const": np.eye(2), "varies": np.full((3,), k)},
                      info={"ids": [f"{k}:{i}" for i in range(n)], "note": "same"})

    r = dr.merge([chunk(0, 3, True), chunk(1, 1, False)], [3, 1], [0, 1, 0, 1], _Rules)
    assert r.arrays["per"].tolist() == [0, 0, 0, 1] and np.array_equal(r.arrays["const"], np.eye(2))
    assert "varies" not in r.arrays and r.info["dataset"]["dropped_arrays"] == ["varies"]
    assert r.info["ids"] == ["0:0", "0:1", "0:2", "1:0"] and r.info["note"] == "same"
    assert r.metrics["worst"] == 1.0 and r.metrics["first_id"] == 10.0 and r.metrics["avg"] == 0.25
    assert r.metrics["per_mean"] == 0.25 and r.metrics["per_mean_class_1"] == 0.5
    assert r.metrics["ok_fraction"] == 0.5 and r.metrics["ok_fraction_class_0"] == 0.5
    (c,) = r.checks
    assert not c.passed and c.value == 0.25 and "held on 1/2 chunks" in c.message


def test_lrp_over_a_set_merges_the_ledger_along_its_sample_axis(toy_card, monkeypatch):
    monkeypatch.setattr(dr, "CHUNK_SAMPLES", 4)
    cfg = {"sanity_check": False}
    r = run(RunSpec("lrp", toy_card.id, "digits:test:0-5", dict(cfg), batch_size=2))
    assert r.info["dataset"]["chunks"] == 2 and r.arrays["relevance"].shape == (6, 16, 16)
    layers = len(r.info["ledger_calls"])
    assert r.arrays["ledger_r_out"].shape == (layers, 6) and r.arrays["leak"].shape == (6,)
    singles = [run(RunSpec("lrp", toy_card.id, i, dict(cfg))) for i in r.info["ids"]]
    assert np.allclose(r.arrays["relevance"], np.concatenate([s.arrays["relevance"] for s in singles]), atol=1e-6)
    worst = max(s.metrics["conservation_rel_error"] for s in singles)
    assert r.metrics["conservation_rel_error"] == pytest.approx(worst, rel=1e-6, abs=1e-12)
    assert r.figures()  # the ledger figures draw from the merged arrays


@pytest.mark.slow
@pytest.mark.zoo("digits_vgg.sk")
def test_ig_over_the_whole_digits_test_split():
    """The data-set target: IG over all 450 test digits, per-sample maps and the share of samples whose
    completeness gap is under 1%, as a metric and as a check over every sample."""
    r = run(RunSpec("attribution", "digits_vgg.sk", "digits:test",
                    {"method": "integrated_gradients", "sanity_check": False}))
    gap = r.arrays["completeness_gap"]
    assert r.arrays["attr_integrated_gradients"].shape == (450, 32, 32) and gap.shape == (450,)
    assert r.metrics["completeness_ok_fraction"] == pytest.approx((gap < 0.01).mean())
    assert r.metrics["completeness_ok_fraction"] > 0.9  # 64 Gauss-Legendre steps: 98% under 1% when measured
    check = next(c for c in r.checks if c.name == "ig_completeness")
    assert check.passed == bool((gap < 0.01).all()) and check.value == pytest.approx(gap.max())
    assert r.provenance.data_id == "digits:test" and len(set(r.info["ids"])) == 450
