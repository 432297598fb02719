"""LRP's quality panel with ``quality_randomization``: the drawn map gets eMPRT and the random-logit test,
recomputed by the same LRP pass (LRP._explainer: composite, canonizers, bounds) for the class it is given; a
planted explainer that ignores that class must fail the random-logit test."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.lrp import analyzer as lrp
from workbench.runtime import RunSpec, run

PANEL = {"quality": True, "quality_step": 0.25, "quality_randomization": True, "sanity_check": False}
SPEC = ("lrp", "digits_vgg.sk", "digits:test:0-3")


def _intercept(monkeypatch, change=None) -> dict:
    """Wrap the analyzer's quality_panel: record what it was given; ``change(explain, target)`` may swap the
    explainers (a planted defect)."""
    real, seen = lrp.quality_panel, {}

    def panel(forward, x, maps, target, *args, explain=None, **kw):
        seen.update(forward=forward, x=x, maps=maps, target=target, explain=explain)
        if change is not None:
            explain = change(explain, target)
        return real(forward, x, maps, target, *args, explain=explain, **kw)

    monkeypatch.setattr(lrp, "quality_panel", panel)
    return seen


@pytest.mark.zoo("digits_vgg.sk")
@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box"])
def test_the_lrp_map_gets_emprt_and_random_logit(monkeypatch, composite):
    seen = _intercept(monkeypatch)
    r = run(RunSpec(*SPEC, {**PANEL, "composite": composite}, device="cpu"))
    checks = {c.name: c for c in r.checks}
    assert {"quality_emprt_lrp", "quality_random_logit_lrp", "canonized", "ledger_closes"} <= set(checks)
    for key in ("quality_emprt_lrp", "quality_logit_ssim_lrp", "quality_logit_rank_corr_lrp"):
        assert np.isfinite(r.metrics[key]), key
    assert checks["quality_random_logit_lrp"].passed, checks["quality_random_logit_lrp"].value
    assert checks["ledger_closes"].passed and checks["canonized"].passed  # the extra passes left the model as is
    assert r.metrics["quality_nonfinite_lrp"] == 0
    # the explainer recomputes the very map that is drawn (same composite, canonizers and bounds)
    again = seen["explain"]["lrp"](seen["forward"], seen["x"], seen["target"]).numpy()
    assert np.allclose(again, r.arrays["relevance"], rtol=1e-4, atol=1e-6)
    assert not np.any(r.arrays["quality_logit_other"] == r.arrays["target"])
    assert "Randomization" in " ".join(str(f.layout.title.text) for f in r.figures())


@pytest.mark.zoo("digits_vgg.sk")
def test_an_explainer_blind_to_the_class_fails_random_logit(monkeypatch):
    def blind(explain, target):  # planted defect: every class gets the explained class's map
        return {n: (lambda m, x, t, f=f: f(m, x, target)) for n, f in explain.items()}

    _intercept(monkeypatch, blind)
    r = run(RunSpec(*SPEC, PANEL, device="cpu"))
    assert not {c.name: c for c in r.checks}["quality_random_logit_lrp"].passed
    assert r.metrics["quality_logit_ssim_lrp"] > 0.99


@pytest.mark.zoo("digits_vgg.sk")
def test_randomization_is_off_unless_asked_for():
    off = run(RunSpec(*SPEC, {**PANEL, "quality_randomization": False}, device="cpu"))
    alone = run(RunSpec(*SPEC, {"quality_randomization": True, "sanity_check": False}, device="cpu"))
    assert "quality_beats_random_lrp" in {c.name for c in off.checks}
    for r in (off, alone):
        assert not any("emprt" in k or "logit_ssim" in k for k in [*r.metrics, *r.arrays])
