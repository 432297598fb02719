"""eeg_saliency as a per-sample analyzer: a data id naming more windows than one chunk runs chunk by chunk
(workbench/runtime/dataset_run.py) and merges into one result whose per-window arrays cover the whole set, whose
localization metrics are exact over the set's evaluated windows, and whose checks held on every chunk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analyzers.eeg_saliency import EegSaliency
from workbench.runtime import RunSpec, run
from workbench.runtime.dataset_run import CHUNK_SAMPLES

MODEL = "eeg_compact.synth"
DATA = "eeg_synth.drowsy:test"  # subjects 9-11: 216 windows, two chunks
pytestmark = pytest.mark.zoo(MODEL)


@pytest.fixture(scope="module")
def merged():
    return run(RunSpec("eeg_saliency", MODEL, DATA, {"methods": "cam,lrp", "random_draws": "1"}, device="cpu"))


def test_the_analyzer_declares_itself_per_sample():
    assert EegSaliency.per_sample and "scores_*" in EegSaliency.sample_arrays


def test_per_window_arrays_are_merged_over_the_chunks(merged):
    ds = merged.info["dataset"]
    assert ds["n_samples"] == 216 and ds["chunks"] == 2 and ds["chunk_sizes"] == [CHUNK_SAMPLES, 216 - CHUNK_SAMPLES]
    assert not ds["dropped_arrays"]
    for name in ("probs", "pred", "labels", "subjects", "evaluated", "scores_cam", "scores_lrp", "random_scores_lrp",
                 "bn_frozen_prob", "burst_fraction"):
        assert len(merged.arrays[name]) == 216, name
    from workbench.data.registry import resolve

    assert merged.info["ids"] == resolve(DATA)[1]  # every window once, in the set's order
    assert set(np.unique(merged.arrays["subjects"]).tolist()) == {9, 10, 11}
    assert merged.metrics["n_windows"] == 216 and merged.metrics["n_samples"] == 216


def test_set_metrics_are_exact_over_the_evaluated_windows_and_checks_held_on_every_chunk(merged):
    a, m = merged.arrays, merged.metrics
    ev = a["evaluated"]
    assert m["n_evaluated"] == ev.sum() > 0
    assert (ev[:CHUNK_SAMPLES].sum(), ev[CHUNK_SAMPLES:].sum()) != (0, 0)
    assert m["saliency_mass_in_bursts"] == pytest.approx(float(a["scores_cam"][ev, 0].astype(np.float64).mean()),
                                                         abs=1e-6)
    assert m["lrp_randomized_mass_in_bursts"] == pytest.approx(float(a["random_scores_lrp"][ev, 0].mean()), abs=1e-6)
    assert m["lrp_randomization_drop"] == pytest.approx(m["lrp_mass_in_bursts"] - m["lrp_randomized_mass_in_bursts"])
    assert m["accuracy"] == pytest.approx(float((a["pred"] == a["labels"]).mean()), abs=1e-6)
    for c in merged.checks:
        if c.name != "finite_values":
            assert "chunks of the data set]" in c.message, c.name
    assert next(c for c in merged.checks if c.name == "saliency_mass_in_bursts").passed
    assert not next(c for c in merged.checks if c.name == "lrp_mass_in_bursts").passed
    assert merged.figures() and "does NOT localize" in merged.summary()


def test_a_cli_data_set_run_writes_the_merged_arrays(tmp_path, capsys):
    from workbench.cli import main

    code = main(["run", "eeg_saliency", "--model", MODEL, "--data", DATA, "--set", "methods=cam",
                 "--set", "random_draws=1", "--out", str(tmp_path / "out"), "--quiet"])
    first = capsys.readouterr().err
    assert code == 0, first[-2000:]
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["metrics"]["n_samples"] == 216 and doc["info"]["dataset"]["chunks"] == 2
    with np.load(tmp_path / "out" / "arrays.npz") as arrays:
        assert arrays["scores_cam"].shape == (216, 3) and arrays["evaluated"].shape == (216,)
    code = main(["run", "eeg_saliency", "--model", MODEL, "--data", DATA, "--set", "window=216", "--out",
                 str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "past the 216" in err[0]
