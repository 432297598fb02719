"""LinearScope over a data set: every sample gets its own frozen replay; the set arrays equal per-sample runs."""

from __future__ import annotations

import numpy as np

from workbench.runtime import RunSpec, run
from workbench.runtime import dataset_run as dr

FAST = {"svd_k": 0, "top_classes": 1}


def test_set_arrays_equal_one_run_per_sample(toy_card, monkeypatch):
    monkeypatch.setattr(dr, "CHUNK_SAMPLES", 3)
    r = run(RunSpec("linear_scope", toy_card.id, "digits:test:0-6", dict(FAST), batch_size=1))
    ids = r.info["set_ids"]
    assert len(ids) == 7 and r.info["dataset"]["chunk_sizes"] == [3, 3, 1]
    assert r.arrays["set_votes_top1"].shape == (7, 16, 16) and r.arrays["set_top1"].shape == (7,)
    for i, sid in enumerate(ids):
        one = run(RunSpec("linear_scope", toy_card.id, sid, dict(FAST)))
        assert int(r.arrays["set_top1"][i]) == int(one.arrays["top"][0])
        assert np.isclose(r.arrays["set_bias_share"][i], one.metrics["bias_share_top1"], atol=1e-6)
        assert np.allclose(r.arrays["set_votes_top1"][i], one.arrays["votes"][0], atol=1e-5)
    first = run(RunSpec("linear_scope", toy_card.id, ids[0], dict(FAST)))
    assert np.array_equal(r.arrays["votes"], first.arrays["votes"])  # detailed views: the first sample's
    assert r.metrics["set_bias_share_mean"] == np.mean(r.arrays["set_bias_share"])
    held = {c.name: c.passed for c in r.checks}
    assert held["replay_exact_set"] and held["vote_identity_set"] and held["affine_set"]
    assert len(r.figures()) >= 2 and "Over 7 samples" in r.summary()


def test_unfrozen_control_fails_the_set_check(toy_card):
    r = run(RunSpec("linear_scope", toy_card.id, "digits:test:0-3", dict(FAST, freeze=False)))
    check = next(c for c in r.checks if c.name == "affine_set")
    assert not check.passed and check.value > 1e-3 and r.arrays["set_affine_rel_error"].shape == (4,)
