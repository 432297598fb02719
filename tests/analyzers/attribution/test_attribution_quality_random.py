"""Attribution's quality panel with ``quality_randomization``: every shown map gets eMPRT and the random-logit
test, recomputed by the method itself (analyzers/attribution/analyzer._explainers); a planted explainer that
ignores the class it is given must fail the random-logit test."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.attribution import analyzer as attribution
from workbench.runtime import RunSpec, run

ALL = "integrated_gradients,saliency,input_x_gradient,grad_cam,occlusion"
PANEL = {"method": ALL, "quality": True, "quality_step": 0.25, "quality_randomization": True,
         "sanity_check": False}
SPEC = ("attribution", "digits_vgg.sk", "digits:test:0-3")


def _intercept(monkeypatch, change=None) -> dict:
    """Wrap the analyzer's quality_panel: record what it was given; ``change(explain, target)`` may swap the
    explainers (a planted defect)."""
    real, seen = attribution.quality_panel, {}

    def panel(forward, x, maps, target, *args, explain=None, **kw):
        seen.update(forward=forward, x=x, maps=maps, target=target, explain=explain)
        if change is not None:
            explain = change(explain, target)
        return real(forward, x, maps, target, *args, explain=explain, **kw)

    monkeypatch.setattr(attribution, "quality_panel", panel)
    return seen


@pytest.mark.zoo("digits_vgg.sk")
def test_every_method_gets_emprt_and_random_logit(monkeypatch):
    seen = _intercept(monkeypatch)
    r = run(RunSpec(*SPEC, PANEL, device="cpu"))
    names = {c.name: c for c in r.checks}
    for m in ALL.split(","):
        for key in (f"quality_emprt_{m}", f"quality_logit_ssim_{m}", f"quality_logit_rank_corr_{m}"):
            assert np.isfinite(r.metrics[key]), key
        assert {f"quality_emprt_{m}", f"quality_random_logit_{m}"} <= set(names)
        assert names[f"quality_random_logit_{m}"].passed, (m, names[f"quality_random_logit_{m}"].value)
        assert r.metrics[f"quality_nonfinite_{m}"] == 0
        # the explainer recomputes the very map that is shown (same method, target, baseline and IG steps)
        again = seen["explain"][m](seen["forward"], seen["x"], seen["target"]).cpu().numpy()
        assert np.allclose(again, r.arrays[f"attr_{m}"], rtol=1e-4, atol=1e-6), m
    assert not np.any(r.arrays["quality_logit_other"] == r.arrays["target"])
    titles = " ".join(str(f.layout.title.text) for f in r.figures())
    assert "Randomization" in titles


@pytest.mark.zoo("digits_vgg.sk")
def test_an_explainer_blind_to_the_class_fails_random_logit(monkeypatch):
    def blind(explain, target):  # planted defect: every class gets the explained class's map
        return {n: (lambda m, x, t, f=f: f(m, x, target)) for n, f in explain.items()}

    _intercept(monkeypatch, blind)
    r = run(RunSpec(*SPEC, {**PANEL, "method": "saliency,grad_cam"}, device="cpu"))
    checks = {c.name: c for c in r.checks}
    for m in ("saliency", "grad_cam"):
        assert not checks[f"quality_random_logit_{m}"].passed
        assert r.metrics[f"quality_logit_ssim_{m}"] > 0.99


@pytest.mark.zoo("digits_vgg.sk")
def test_randomization_is_off_unless_asked_for():
    off = run(RunSpec(*SPEC, {**PANEL, "quality_randomization": False, "method": "saliency"}, device="cpu"))
    alone = run(RunSpec(*SPEC, {"method": "saliency", "quality_randomization": True, "sanity_check": False},
                        device="cpu"))
    assert "quality_beats_random_saliency" in {c.name for c in off.checks}
    for r in (off, alone):
        assert not any("emprt" in k or "logit" in k for k in [*r.metrics, *r.arrays])
