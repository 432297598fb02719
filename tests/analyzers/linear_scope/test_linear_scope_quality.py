"""LinearScope's vote maps get the quality panel (quality=true): per sample and over a data set in chunks, the
recomputing explainer of eMPRT / random logit reproduces the judged map, and on a trained zoo model the vote
maps beat the random map and pass eMPRT and the random-logit test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analyzers.linear_scope.quality import vote_maps
from workbench.runtime import RunSpec, run
from workbench.runtime import dataset_run as dr

FAST = {"svd_k": 0, "top_classes": 1}
PANEL = {"quality": True, "quality_step": 0.25, "quality_randomization": True}


class Net(nn.Module):
    """ReLU / max-pool classifier (N, 1, 8, 8) -> (N, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Linear(64, 3)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def test_the_recomputed_vote_maps_are_the_judged_ones():
    import workbench as wb

    torch.manual_seed(0)
    net = Net().eval()
    x = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    r = wb.run("linear_scope", model=net, data=x, classes=("a", "b", "c"), device="cpu", **FAST, **PANEL)
    top = torch.as_tensor(np.array(r.arrays["set_top1"]))
    again = vote_maps(net, torch.as_tensor(x), top)
    assert np.allclose(again.numpy(), r.arrays["set_votes_top1"], atol=1e-6)
    other = torch.as_tensor(np.array(r.arrays["quality_logit_other"]))
    assert not torch.equal(other, top) and not np.allclose(vote_maps(net, torch.as_tensor(x), other).numpy(),
                                                           r.arrays["set_votes_top1"])
    names = {c.name for c in r.checks}
    assert {"quality_beats_random_votes", "quality_emprt_votes", "quality_random_logit_votes"} <= names
    off = wb.run("linear_scope", model=net, data=x, classes=("a", "b", "c"), device="cpu", **FAST)
    assert not any(k.startswith("quality_") for k in [*off.metrics, *off.arrays])


def test_the_panel_over_a_data_set_in_chunks(toy_card, monkeypatch):
    monkeypatch.setattr(dr, "CHUNK_SAMPLES", 3)
    r = run(RunSpec("linear_scope", toy_card.id, "digits:test:0-6", {**FAST, **PANEL}, batch_size=1))
    assert r.info["dataset"]["chunk_sizes"] == [3, 3, 1]
    a = r.arrays
    assert a["quality_fractions"].shape == (5,) and a["quality_deletion_votes"].shape == (7, 5)
    for key in ("quality_deletion_auc_votes", "quality_emprt_votes", "quality_logit_ssim_votes"):
        assert a[key].shape == (7,)
        assert np.isclose(r.metrics[key], a[key].mean(), atol=1e-12)  # chunk means weighted by their sizes
    assert not np.any(a["quality_logit_other"] == a["set_top1"])
    titles = " ".join(str(f.layout.title.text) for f in r.figures())
    assert "Faithfulness: deletion" in titles and "Randomization" in titles


@pytest.mark.zoo("digits_vgg.sk")
def test_trained_vote_maps_pass_the_panel():
    r = run(RunSpec("linear_scope", "digits_vgg.sk", "digits:test:0-5", {**FAST, **PANEL, "quality_step": 0.1}))
    checks = {c.name: c for c in r.checks}
    for name in ("quality_beats_random_votes", "quality_emprt_votes", "quality_random_logit_votes"):
        assert checks[name].passed, (name, checks[name].value)
    assert r.metrics["quality_deletion_auc_votes"] < r.metrics["quality_deletion_auc_random"]
