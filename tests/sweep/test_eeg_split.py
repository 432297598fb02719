"""`workbench sweep eeg_saliency --split` with loso on: the call with loso off (one cell; over a data set
the runner chunks it inside) plus one cell per held-out subject, merged into eeg_saliency's own result:
through the local process pool with 2 workers it equals a single `workbench run` (arrays bit for bit,
metrics, checks), on a data set of two chunks too, and a re-run reuses every cell."""

from __future__ import annotations

from sweep_helpers import same_result, single_call

from workbench.sweep.engine import RunOptions
from workbench.sweep.split import SplitOptions, run_split

CARD = "eeg_compact.synth"
CONFIG = {"methods": "cam", "max_windows": 24, "random_draws": 1, "loso": True, "loso_epochs": 1,
          "loso_folds": 2}


def _split(out, data, workers):
    return run_split("eeg_saliency", CARD, data, CONFIG, 3, SplitOptions(RunOptions("local", workers), out=out))


def test_loso_split_equals_the_single_call_and_reuses_its_cells(tmp_path):
    data = "eeg_synth.drowsy:test:0-39"
    whole = single_call("eeg_saliency", CARD, data, CONFIG, seed=3)
    merged = _split(tmp_path, data, 2)
    assert (merged.info["split"]["cells"], merged.info["split"]["computed"]) == (3, 3)  # main + 2 folds
    assert merged.data == data and merged.config["loso"] is True
    assert merged.arrays["loso_subjects"].tolist() == whole.arrays["loso_subjects"].tolist() == [1, 2]
    assert same_result(whole, merged) == []
    titles = [f.layout.title.text or "" for f in merged.figures()]
    assert len(titles) == len(whole.figures()) and any(t.startswith("Leave-one-subject-out") for t in titles)
    again = _split(tmp_path, data, 1)
    assert (again.info["split"]["computed"], again.info["split"]["reused"]) == (0, 3)
    assert same_result(merged, again) == []


def test_loso_split_over_a_data_set_of_chunks_equals_the_single_data_set_run(tmp_path):
    data = "eeg_synth.drowsy:test:0-199"  # two chunks (128 + 72): the protocol's metrics merge by "first"
    whole = single_call("eeg_saliency", CARD, data, CONFIG, seed=3)
    merged = _split(tmp_path, data, 2)
    assert merged.info["split"]["cells"] == 3 and merged.info["dataset"]["chunk_sizes"] == [128, 72]
    assert same_result(whole, merged) == []
    assert [c.message for c in merged.checks] == [c.message for c in whole.checks]


def test_the_protocol_alone_draws_its_figure(tmp_path):
    from analyzers.eeg_saliency.loso_sweep import LOSO

    r = run_split("eeg_saliency", CARD, "eeg_synth.drowsy", {"loso": True, "loso_epochs": 1, "loso_folds": 2}, 0,
                  SplitOptions(RunOptions("local", 1), out=tmp_path), hooks=LOSO)
    assert "show_signal" not in r.arrays
    assert [f.layout.title.text[:21] for f in r.figures()] == ["Leave-one-subject-out"]


def test_without_loso_a_split_data_set_goes_in_chunks(tmp_path):
    """eeg_saliency's split hook returns None without LOSO: the sweep then cuts the data set into the runner's
    chunks (resumable, parallel), as for any per-sample analyzer, instead of one cell for the whole set."""
    from analyzers.eeg_saliency.analyzer import EegSaliency
    from workbench.sweep.split import SplitOptions, run_split

    assert EegSaliency.split({"loso": False}, 0, "eeg_compact.synth", "eeg_synth.drowsy:test:0-39") is None
    r = run_split("eeg_saliency", "eeg_compact.synth", "eeg_synth.drowsy:all:0-299",
                  {"methods": "cam", "random_draws": 1}, how=SplitOptions(out=tmp_path / "s"))
    assert r.info["split"]["cells"] == 3 and r.info["dataset"]["chunk_sizes"] == [128, 128, 44]  # the runner's
