"""EEG saliency's quality panel with eMPRT and the random-logit test (option quality_randomization): the maps are
recomputed by the method itself (analyzers/eeg_saliency/quality.py), on Cui's layout and on a generic network; a
map that ignores the class must fail the random-logit check. Also: emotiv.ica's ICLabel sheets are offered only to
a model taking them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analyzers.eeg_saliency import quality as eq
from workbench.runtime import RunSpec, run

DATA = "eeg_synth.drowsy:test:0-7"
ON = {"random_draws": "1", "quality": "true", "quality_step": "0.25", "quality_randomization": "true"}
METHODS = ("cam", "lrp", "ig")


def _check(r, name):
    return next(c for c in r.checks if c.name == name)


def _spy(monkeypatch) -> dict:
    """Records what the analyzer hands the shared panel (forward, inputs, maps, targets, explain functions)."""
    seen, real = {}, eq.quality_panel

    def spy(forward, x, maps, target, **kw):
        seen.update(forward=forward, x=x, maps=maps, target=target, explain=kw.get("explain"))
        return real(forward, x, maps, target, **kw)

    monkeypatch.setattr(eq, "quality_panel", spy)
    return seen


@pytest.mark.zoo("eeg_compact.synth")
def test_emprt_and_random_logit_on_cui_maps_recompute_the_shown_maps_and_flip_the_contrast(monkeypatch):
    seen = _spy(monkeypatch)
    r = run(RunSpec("eeg_saliency", "eeg_compact.synth", DATA, ON, device="cpu"))
    for m in METHODS:
        for key in (f"quality_emprt_{m}", f"quality_logit_ssim_{m}", f"quality_entropy_randomized_{m}"):
            assert np.isfinite(r.metrics[key]) and r.arrays[key].shape == (8,)
        assert r.metrics[f"quality_nonfinite_{m}"] == 0
        assert _check(r, f"quality_emprt_{m}").passed and _check(r, f"quality_random_logit_{m}").passed
    np.testing.assert_array_equal(r.arrays["quality_logit_other"], 1 - r.arrays["pred"])  # binary: the other class
    assert any(f.layout.title.text.startswith("Randomization") for f in r.figures())
    assert "eMPRT, LRP" in r.summary() and "the map only changes sign" in r.summary()  # binary contrast, in words
    fwd, x, target, explain = seen["forward"], seen["x"], seen["target"], seen["explain"]
    assert isinstance(fwd, eq.CuiForward) and set(explain) == set(METHODS)
    for m in METHODS:  # the explain function at the trained model and the explained class gives the shown map
        again = explain[m](fwd, x, target)
        torch.testing.assert_close(again, seen["maps"][m], rtol=1e-4, atol=1e-5 * float(again.abs().max()))
    for m in ("lrp", "ig"):  # contrast of the other class = minus the explained contrast: the map is negated
        other = explain[m](fwd, x, 1 - target)
        torch.testing.assert_close(other, -seen["maps"][m], rtol=1e-4, atol=1e-5 * float(other.abs().max()))
    plain = run(RunSpec("eeg_saliency", "eeg_compact.synth", DATA, {**ON, "quality_randomization": "false",
                                                                    "methods": "cam"}, device="cpu"))
    assert "quality_deletion_cam" in plain.arrays and not any("emprt" in k or "logit" in k for k in plain.arrays)


@pytest.mark.zoo("eeg_compact.synth")
def test_a_map_that_ignores_the_class_fails_the_random_logit_check(monkeypatch):
    real = eq.explainers

    def class_blind(w, names):  # planted defect: every map is the explained class's, whatever class is asked
        fns = real(w, names)
        return {n: (lambda m, x, t, f=fns[n]: f(m, x, w.target)) for n in names}

    monkeypatch.setattr(eq, "explainers", class_blind)
    r = run(RunSpec("eeg_saliency", "eeg_compact.synth", DATA, {**ON, "methods": "cam,ig"}, device="cpu"))
    for m in ("cam", "ig"):
        c = _check(r, f"quality_random_logit_{m}")
        assert not c.passed and c.value > 0.99  # SSIM of a map with itself
        assert _check(r, f"quality_emprt_{m}").passed  # the defect is in the class, not in the weights


@pytest.mark.zoo("braindecode.eegnet")
def test_emprt_and_random_logit_on_a_generic_network(monkeypatch):
    seen = _spy(monkeypatch)
    r = run(RunSpec("eeg_saliency", "braindecode.eegnet", "eeg_synth.drowsy:test:0-3", {**ON, "methods": "cam,ig"},
                    device="cpu"))
    for m in ("cam", "ig"):
        assert np.isfinite(r.metrics[f"quality_emprt_{m}"]) and np.isfinite(r.metrics[f"quality_logit_ssim_{m}"])
        assert any(c.name == f"quality_random_logit_{m}" for c in r.checks)
    fwd, x, target, explain = seen["forward"], seen["x"], seen["target"], seen["explain"]
    assert fwd is not None and not isinstance(fwd, eq.CuiForward)
    other = explain["ig"](fwd, x, 1 - target)  # generic contrast of the other class: IG exactly negated too
    torch.testing.assert_close(other, -seen["maps"]["ig"], rtol=1e-4, atol=1e-5 * float(other.abs().max()))


def test_iclabel_sheets_are_offered_only_to_a_model_taking_them():
    from workbench.core.cards import get_card
    from workbench.data import datasets_for

    vgg, iclabel = get_card("digits_vgg.sk"), get_card("iclabel.mne")
    assert vgg.kind == iclabel.kind == "image2d"
    assert "emotiv.ica" not in datasets_for(vgg.kind, vgg.input_shape)
    assert "digits" in datasets_for(vgg.kind, vgg.input_shape)
    assert "emotiv.ica" in datasets_for(iclabel.kind, iclabel.input_shape)
