"""Issue 17, EEG: every map (CAM variant, LRP, IG) is judged by the same localization checks and the one shared
randomization control; the defects found are fixed (LRP was Gradient x Input, the raw logit carried a part that
changes no prediction) and the methods' real limits make their checks fail on eeg_compact.synth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analyzers._shared import randomization as shared
from analyzers.eeg_saliency import maps as em
from analyzers.eeg_saliency import truth as tr
from analyzers.eeg_saliency.analyzer import EegSaliencyConfig
from workbench.data import get_samples
from workbench.runtime import RunSpec, load_model, run

MODEL = "eeg_compact.synth"
pytestmark = pytest.mark.zoo(MODEL)
METHODS = ("cam", "lrp", "ig")


def _check(r, name):
    return next(c for c in r.checks if c.name == name)


@pytest.fixture(scope="module")
def result():
    return run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy", {"random_draws": "1"}, device="cpu"))


@pytest.fixture(scope="module")
def windows():
    handle = load_model(MODEL, "cpu")
    x = torch.from_numpy(np.stack([handle.card.preprocess(s) for s in get_samples("eeg_synth.drowsy:458,459,461")]))
    sc, sh = em.bn_affine(handle.module, x, "frozen")
    return handle.module, x, sc, sh


def test_each_map_has_localization_and_randomization_checks_and_the_verdicts_are_stated(result):
    m = result.metrics
    for meth in METHODS:
        k = tr.keys(meth)
        for name in (*k["scores"], k["drop"], k["falls"]):
            _check(result, name)  # present as a check with a threshold
        assert m[k["drop"]] == pytest.approx(m[k["scores"][0]] - m[k["random"][0]], abs=1e-6)
    # the CAM variant localizes; LRP and IG do not (mass and channels), and the summary says so in words
    for name in ("saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game", "randomization_drop"):
        assert _check(result, name).passed, name
    for name in ("lrp_mass_in_bursts", "lrp_posterior_share", "ig_mass_in_bursts", "ig_posterior_share"):
        assert not _check(result, name).passed, name
    assert m["chance_mass_in_bursts"] + 0.15 < m["ig_mass_in_bursts"] < m["lrp_mass_in_bursts"] < 0.8
    text = result.summary()
    assert "CAM variant localizes" in text and "LRP does NOT localize" in text
    assert "Integrated Gradients does NOT localize" in text and "Why LRP and Integrated Gradients" in text
    verdicts = {k: ok for k, ok, _ in result.localization_verdicts()}
    assert verdicts == {"cam": True, "lrp": False, "ig": False}


def test_the_shared_randomization_control_makes_all_three_random_maps(result, monkeypatch):
    """The control's maps are those of ``analyzers._shared.randomization.randomized_copy``: recomputed here
    from that copy for the first evaluated window, for each method."""
    calls = []
    real = shared.randomized_copy
    monkeypatch.setattr(tr, "randomized_copy", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    r = run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy", {"random_draws": "2"}, device="cpu"))
    assert calls == [(-1, 0), (-1, 0)]  # one copy per draw, all layers, the run's seed
    assert r.info["randomized_layers"] == shared.parameterized_layers(load_model(MODEL, "cpu").module)
    handle = load_model(MODEL, "cpu")
    k = r.info["random_example_window"]
    ev = np.array(r.arrays["evaluated"])
    x = torch.from_numpy(np.stack([handle.card.preprocess(s) for s in get_samples("eeg_synth.drowsy")]))
    x, target = x[torch.as_tensor(ev)], torch.as_tensor(np.array(r.arrays["pred"])[ev])
    rnd = shared.randomized_copy(handle.module, -1, 0, draw=0).module
    sc, sh = em.bn_affine(rnd, x, "batch")
    canon = em.canonical_model(rnd, sc, sh, contrast=True)
    cfg = EegSaliencyConfig()
    want = {"lrp": em.lrp_maps(canon, x[:1], target[:1], cfg.lrp_epsilon, relative=True)[0],
            "ig": (x[:1] * em.ig_gradients(canon, x[:1], target[:1], cfg.ig_steps))[0]}
    z, a, _ = em.forward_parts(rnd, x, sc, sh)
    want["cam"] = em.cam_heatmap(rnd, x[:1], z[:1], a[:1], target[:1])[0]
    assert k == int(np.flatnonzero(ev)[0])
    for meth in METHODS:
        got = r.arrays[f"random_{meth}_example"]
        assert np.abs(got - want[meth].numpy()).max() <= 1e-4 * np.abs(got).max(), meth
        assert (r.arrays[f"random_scores_{meth}"][~ev] == 0).all()


def test_a_control_that_redraws_nothing_fails_every_drop_check():
    r = run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy:subject:10",
                    {"randomize_layers": "0", "random_draws": "1", "ig_steps": "8"}, device="cpu"))
    for meth in METHODS:
        k = tr.keys(meth)
        assert abs(r.metrics[k["drop"]]) < 1e-6, meth
        assert not _check(r, k["drop"]).passed, meth


def test_lrp_is_no_longer_gradient_times_input(windows):
    """epsilon -> 0 (LRP-0) equals Gradient x Input on this ReLU network; the default epsilon must not."""
    module, x, sc, sh = windows
    canon = em.canonical_model(module, sc, sh, contrast=True)
    target = canon(x).argmax(1)
    xg = x.clone().requires_grad_(True)
    canon(xg).gather(1, target[:, None]).sum().backward()
    gxi = (x * xg.grad).numpy().ravel()
    lrp0 = em.lrp_maps(canon, x, target, 0.0, relative=True).numpy().ravel()
    assert np.abs(lrp0 - gxi).max() < 1e-4 * np.abs(gxi).max()
    default = em.lrp_maps(canon, x, target, EegSaliencyConfig().lrp_epsilon, relative=True).numpy().ravel()
    assert np.corrcoef(default, gxi)[0, 1] < 0.99


def test_contrast_maps_ignore_a_part_common_to_both_logits(windows):
    """Adding the same function to both logits changes no prediction: the contrast maps stay, raw-logit maps move."""
    module, x, sc, sh = windows
    import copy

    shifted = copy.deepcopy(module)
    with torch.no_grad():
        common = torch.randn(shifted.fc.in_features, generator=torch.Generator().manual_seed(1))
        shifted.fc.weight += common[None, :]
    for contrast, same in ((True, True), (False, False)):
        a, b = (em.canonical_model(m, sc, sh, contrast=contrast) for m in (module, shifted))
        target = a(x).argmax(1)
        assert torch.equal(target, b(x).argmax(1))
        ra, rb = (em.lrp_maps(c, x, target, 0.25, relative=True) for c in (a, b))
        ia, ib = (x * em.ig_gradients(c, x, target, 8) for c in (a, b))
        assert torch.allclose(ra, rb, atol=1e-5 * float(ra.abs().max())) is same
        assert torch.allclose(ia, ib, atol=1e-5 * float(ia.abs().max())) is same
    assert EegSaliencyConfig().explain == "contrast"


def test_an_alpha_band_stopped_ig_baseline_carries_the_answer():
    """Why the IG baseline stays zeros: with the alpha band removed from the baseline, a re-initialized model's IG
    also points at the bursts (the randomization control cannot tell it from a trained one)."""
    from analyzers.eeg_saliency.localization import localize
    from analyzers.eeg_saliency.scores import select_windows, truth_for
    from analyzers.eeg_saliency.variants import band_stop, ig
    from workbench.runtime.runner import make_batch

    handle = load_model(MODEL, "cpu")
    data = make_batch(handle.card, "eeg_synth.drowsy:subject:10", "cpu")
    sel = select_windows(data, 1000)
    sc, sh = em.bn_affine(handle.module, data.x, "frozen")
    pred = em.forward_parts(handle.module, data.x, sc, sh)[2].argmax(1)
    truth = truth_for(sel, pred.numpy(), handle.card)
    ev = torch.as_tensor(truth["evaluated"])
    x, target = data.x[ev], pred[ev]
    rnd = shared.randomized_copy(handle.module, -1, 0).module
    canon = em.canonical_model(rnd, *em.bn_affine(rnd, x, "batch"), contrast=True)
    point = {}
    for name, base in (("zeros", torch.zeros_like(x)), ("alpha_stop", band_stop(x, 7.5, 12.5, 128.0))):
        point[name] = localize(ig(canon, x, target, base, 16).numpy(), truth["mask"][truth["evaluated"]],
                               truth["posterior"], 16)[:, 2].mean()
    assert point["zeros"] < 0.5 < 0.7 < point["alpha_stop"]


def test_the_variant_table_agrees_with_the_run_and_with_itself():
    """config variants: the default rows equal the run's own LRP / IG scores, LRP-0 equals Gradient x Input, and
    the table is what the page shows."""
    r = run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy:subject:10", {"variants": "true", "random_draws": "1",
                                                                             "ig_steps": "32"}, device="cpu"))
    rows = {row["variant"]: row for row in r.variant_table()}
    assert len(rows) == len(r.info["variants"]) == 13
    m = r.metrics
    lrp, ig = rows[r.info["variants"][0]], rows[r.info["variants"][1]]
    assert lrp["positive mass"] == pytest.approx(m["lrp_mass_in_bursts"], abs=1e-5)
    assert lrp["positive posterior"] == pytest.approx(m["lrp_posterior_share"], abs=1e-5)
    assert ig["positive mass"] == pytest.approx(m["ig_mass_in_bursts"], abs=2e-3)  # captum vs the run's IG steps
    assert lrp["randomized positive mass"] == pytest.approx(m["lrp_randomized_mass_in_bursts"], abs=1e-5)
    zero, gxi = rows["lrp eps=0 rms (= LRP-0)"], rows["gradient x input"]
    assert all(abs(zero[k] - gxi[k]) < 1e-4 for k in zero if k != "variant")
    assert rows["ig alpha band-stop 7.5-12.5 Hz"]["randomized pointing"] > 0.7
    assert any("variants on the same windows" in f.layout.title.text for f in r.figures())
