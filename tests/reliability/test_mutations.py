"""Mutation tests: plant a wrong method in the analyzers, run the reference checks, and require them to FAIL.

The seams: ``analyzers.lrp.analyzer.make_composite`` (the composite factory the lrp analyzer calls for every
pass) and ``analyzers.attribution.methods.IMPLEMENTATIONS`` (method name -> function, read by every
attribution call). Each mutation is planted with monkeypatch (undone after the test) and the same check
functions the reference tests run (tests/analyzers/{lrp,attribution}/test_*_reference.py) are called
in-process. A control runs the unmutated path through the same harness and must pass, so a failure under a
mutation comes from the wrong method, not from the harness.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]


def _load(rel: str, name: str):
    spec = importlib.util.spec_from_file_location(name, TESTS / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LRP_REF = _load("analyzers/lrp/test_lrp_reference.py", "_mutations_lrp_reference")
ATTR_REF = _load("analyzers/attribution/test_attribution_reference.py", "_mutations_attribution_reference")


def _fails(check, *args) -> None:
    with pytest.raises(AssertionError):
        check(*args)


# ---- LRP --------------------------------------------------------------------------------------------

def _zennit_rules(composite: str) -> tuple:
    """The zennit rules of Net3's (conv1, conv2, fc) for ``composite``, as the literal table says."""
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, ZBox, ZPlus

    eps, st = LRP_REF.EPS, LRP_REF.STAB
    box = ZBox(low=LRP_REF.LOW, high=LRP_REF.HIGH, stabilizer=st)
    return {"epsilon_plus_flat": (Flat(stabilizer=st), ZPlus(stabilizer=st), Epsilon(epsilon=eps)),
            "epsilon_gamma_box": (box, Gamma(gamma=LRP_REF.GAMMA, stabilizer=st), Epsilon(epsilon=eps)),
            "epsilon_alpha2_beta1": (AlphaBeta(2.0, 1.0, stabilizer=st), AlphaBeta(2.0, 1.0, stabilizer=st),
                                     Epsilon(epsilon=eps)),
            "paper": (box, AlphaBeta(1.0, 0.0, stabilizer=st, zero_params=["bias"]), Epsilon(epsilon=eps))}[composite]


def _wrong_rules(composite: str) -> tuple:
    """For each layer of Net3, the closest plausible mistake: another first-layer rule, the neighbouring
    conv rule (gamma -> z+, alpha2-beta1 -> alpha1-beta0, bias kept where 'paper' ignores it), LRP-0 for epsilon."""
    from zennit.rules import AlphaBeta, Epsilon, Flat, ZPlus

    st, lrp0 = LRP_REF.STAB, Epsilon(epsilon=0.0)
    return {"epsilon_plus_flat": (ZPlus(stabilizer=st), Epsilon(epsilon=LRP_REF.EPS), lrp0),
            "epsilon_gamma_box": (Flat(stabilizer=st), ZPlus(stabilizer=st), lrp0),
            "epsilon_alpha2_beta1": (ZPlus(stabilizer=st), AlphaBeta(1.0, 0.0, stabilizer=st), lrp0),
            "paper": (Flat(stabilizer=st), AlphaBeta(1.0, 0.0, stabilizer=st), lrp0)}[composite]


def _name_map_factory(rules: tuple):
    """A stand-in for make_composite that gives Net3's three layers exactly ``rules`` (and ReLU Pass)."""
    from zennit.composites import NameMapComposite
    from zennit.rules import Pass

    def factory(name, low, high, *, epsilon=1e-6, stabilizer=1e-6, canonizers=None):
        names = [(("conv1",), rules[0]), (("conv2",), rules[1]), (("fc",), rules[2]),
                 (("relu1", "relu2"), Pass())]
        return NameMapComposite(name_map=names, canonizers=canonizers or [])

    return factory


@pytest.mark.parametrize("composite", LRP_REF.COMPOSITES)
def test_control_the_name_map_harness_passes_with_the_right_rules(composite, monkeypatch):
    import analyzers.lrp.analyzer as lrp

    monkeypatch.setattr(lrp, "make_composite", _name_map_factory(_zennit_rules(composite)))
    LRP_REF.check_literal(composite)


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize("composite", LRP_REF.COMPOSITES)
def test_a_wrong_rule_on_any_layer_fails_the_literal_reference(composite, layer, monkeypatch):
    import analyzers.lrp.analyzer as lrp

    rules = list(_zennit_rules(composite))
    rules[layer] = _wrong_rules(composite)[layer]
    monkeypatch.setattr(lrp, "make_composite", _name_map_factory(tuple(rules)))
    _fails(LRP_REF.check_literal, composite)


def test_first_layer_flat_swapped_for_epsilon_plus_fails(monkeypatch):
    """The issue's mutation: EpsilonPlus (ZPlus on the first conv too) where EpsilonPlusFlat was asked for."""
    from zennit.composites import EpsilonPlus

    import analyzers.lrp.analyzer as lrp

    real = lrp.make_composite

    def swapped(name, low, high, *, epsilon=1e-6, stabilizer=1e-6, canonizers=None):
        if name == "epsilon_plus_flat":
            return EpsilonPlus(epsilon=epsilon, stabilizer=stabilizer, canonizers=canonizers or [])
        return real(name, low, high, epsilon=epsilon, stabilizer=stabilizer, canonizers=canonizers)

    monkeypatch.setattr(lrp, "make_composite", swapped)
    _fails(LRP_REF.check_literal, "epsilon_plus_flat")
    for net in ("net3", "bn_net", "resnet"):
        _fails(LRP_REF.check_zennit, "epsilon_plus_flat", net)


@pytest.mark.parametrize("composite", LRP_REF.COMPOSITES)
def test_lrp0_for_epsilon_fails(composite, monkeypatch):
    """The issue's mutation: the dense layers' epsilon dropped to 0 (LRP-0) in every composite."""
    import analyzers.lrp.analyzer as lrp

    real = lrp.make_composite
    monkeypatch.setattr(lrp, "make_composite", lambda name, low, high, **kw: real(name, low, high,
                                                                                 **{**kw, "epsilon": 0.0}))
    _fails(LRP_REF.check_literal, composite)
    _fails(LRP_REF.check_zennit, composite, "net3")


# ---- attribution ------------------------------------------------------------------------------------

def _abs_input(module, layer, x, s):
    return x.detach().abs()


def _noise(module, layer, x, s):
    return torch.randn_like(x)


def _plain_gradient(module, layer, x, s):
    from analyzers.attribution.methods import IMPLEMENTATIONS

    return IMPLEMENTATIONS["input_x_gradient"](module, layer, x, s) / x.detach()


ATTR_MUTATIONS = {  # method -> (wrong implementation, the checks that must fail)
    "saliency": (_abs_input, ["check_saliency", ("check_planted", "saliency")]),
    "occlusion": (_noise, ["check_occlusion", ("check_planted", "occlusion")]),
    "input_x_gradient": (_abs_input, ["check_input_x_gradient", ("check_planted", "input_x_gradient")]),
    "integrated_gradients": (lambda m, l, x, s: x.detach() * 0 + 1, ["check_integrated_gradients"]),
    "grad_cam": (_noise, ["check_grad_cam", ("check_planted", "grad_cam")]),
}


def _run(check) -> None:
    name, *args = (check,) if isinstance(check, str) else check
    getattr(ATTR_REF, name)(*args)


@pytest.mark.parametrize("method", list(ATTR_MUTATIONS))
def test_control_every_attribution_check_passes_unmutated(method):
    for check in ATTR_MUTATIONS[method][1]:
        _run(check)


@pytest.mark.parametrize("method", list(ATTR_MUTATIONS))
def test_a_wrong_attribution_method_fails_its_reference(method, monkeypatch):
    from analyzers.attribution import methods

    monkeypatch.setitem(methods.IMPLEMENTATIONS, method, ATTR_MUTATIONS[method][0])
    for check in ATTR_MUTATIONS[method][1]:
        with pytest.raises(AssertionError):
            _run(check)


def test_saliency_as_abs_input_fails_the_end_to_end_run(monkeypatch):
    """The swap is caught through the runner too, not only by calling the method function."""
    from analyzers.attribution import methods

    monkeypatch.setitem(methods.IMPLEMENTATIONS, "saliency", _abs_input)
    with pytest.raises(AssertionError, match="run: saliency"):
        ATTR_REF.test_the_analyzer_run_reports_the_reference_maps()


def test_signed_gradient_for_saliency_fails(monkeypatch):
    """Saliency without the absolute value (a plain gradient) is also wrong."""
    from analyzers.attribution import methods

    monkeypatch.setitem(methods.IMPLEMENTATIONS, "saliency", _plain_gradient)
    _fails(ATTR_REF.check_saliency)

