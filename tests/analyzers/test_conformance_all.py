"""Every registered analyzer, built-in or installed plug-in, passes the conformance suite
(workbench.core.conformance.check_analyzer): config round trip, no hook or state change after a run,
a cancel or a model error mid-run, exact save/load, figures without torch, complete provenance, declared
libraries, and a headline check that a weight-randomized model breaks (or a stated reason why none)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from workbench.core.analyzer import PLUGIN_ERRORS, list_analyzers
from workbench.core.conformance import check_analyzer
from workbench.runtime.conformance import RuntimeHarness

#: conformance runs over ~5 s on 2 shared cores (measured 5-12 s: they train, or run IG or LRP several times)
SLOW = {"attribution", "kernel_spectra", "learning_stop", "lrp_pruning", "transferability"}
HARNESS = RuntimeHarness(device="cpu")


def _declared() -> set[str]:
    """Analyzer names declared by entry point: the installation's analyzers and plug-ins (test modules
    register throwaway analyzers of their own in-process; those are not part of the installation)."""
    return {ep.name for ep in entry_points(group="workbench.analyzers")}


def _registered() -> list:
    return [pytest.param(cls, id=cls.name, marks=[pytest.mark.slow] if cls.name in SLOW else [])
            for cls in list_analyzers() if cls.name in _declared()]


def test_every_declared_analyzer_is_registered():
    """A plug-in that fails to import would otherwise drop out of the parametrization below unseen."""
    registered = {cls.name for cls in list_analyzers()}
    assert _declared() and _declared() <= registered, {k: v for k, v in PLUGIN_ERRORS.items() if "analyzers" in k}


@pytest.mark.parametrize("cls", _registered())
def test_analyzer_passes_the_conformance_suite(cls):
    report = check_analyzer(cls, HARNESS)  # raises ConformanceError naming every failed check
    print(report)
    assert {o.name for o in report.outcomes} >= {"config", "run", "save_load", "headline_randomization"}
