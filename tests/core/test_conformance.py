"""The conformance suite itself: a clean throwaway analyzer passes, and every planted defect makes
check_analyzer fail on the right check with the right message (throwaway analyzers in conformance_plants)."""

from __future__ import annotations

import contextlib

import pytest

from tests.core import conformance_plants as plants
from workbench.core.analyzer import _ANALYZERS, get_analyzer, register_analyzer
from workbench.core.conformance import NA, PASS, ConformanceError, check_analyzer
from workbench.core.result import Result
from workbench.runtime.conformance import RuntimeHarness

HARNESS = RuntimeHarness(device="cpu")


@contextlib.contextmanager
def registered_only_inside(cls):
    """``cls`` is a registered analyzer inside the block only (registry and result classes)."""
    register_analyzer(cls)
    try:
        yield cls
    finally:
        _ANALYZERS.pop(cls.name, None)
        Result.classes.pop(cls.name, None)


@pytest.fixture
def registered():
    """Register throwaway analyzers for one test only; they are removed afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda cls: stack.enter_context(registered_only_inside(cls))


def test_a_clean_analyzer_passes_every_check(registered):
    report = check_analyzer(registered(plants.Clean), HARNESS)
    assert report.passed, report
    assert [o.name for o in report.outcomes] == [
        "config", "run", "model_unchanged", "cancel_mid_run", "fault_mid_run", "save_load",
        "figures_without_torch", "provenance", "libraries_declared", "headline_randomization"]
    assert all(o.status == PASS for o in report.outcomes), report
    assert "fails on the randomized copy" in report["headline_randomization"].message


def test_throwaway_analyzers_are_removed_afterwards():
    with registered_only_inside(plants.Clean):
        assert get_analyzer(plants.Clean.name) is plants.Clean
    assert plants.Clean.name not in _ANALYZERS and plants.Clean.name not in Result.classes


@pytest.mark.parametrize("plant, check, words", [
    (plants.HookLeak, "model_unchanged", "left "),
    (plants.ParamChange, "model_unchanged", "changed parameter/buffer values: features.conv1.weight"),
    (plants.ModeChange, "model_unchanged", "changed the train/eval mode of: <model> (eval -> train)"),
    (plants.LeakOnError, "fault_mid_run", "left 1 hook(s) on the model"),
    (plants.LeakOnError, "cancel_mid_run", "left 1 hook(s) on the model"),
    (plants.SwallowsCancel, "cancel_mid_run", "a cancelled job must end cancelled"),
    (plants.Lossy, "save_load", "array(s) lost: probs"),
    (plants.TorchFigures, "figures_without_torch", "without torch: ModuleNotFoundError: import of torch halted"),
    (plants.HeadlineSurvives, "headline_randomization", "'logits_finite' survives randomization"),
    (plants.BadDefault, "config", "the default Config is invalid (ConfigError: chunk=100 is above the maximum 64)"),
], ids=lambda v: v.name if isinstance(v, type) else None)
def test_a_planted_defect_fails_the_right_check_with_the_right_message(registered, plant, check, words):
    with pytest.raises(ConformanceError) as caught:
        check_analyzer(registered(plant), HARNESS)
    line = next((ln for ln in str(caught.value).splitlines() if ln.strip().startswith(f"FAIL {check}:")), "")
    assert words in line, str(caught.value)


def test_the_report_lists_outcomes_without_raising_when_asked(registered):
    report = check_analyzer(registered(plants.LeakOnError), HARNESS, raise_on_failure=False)
    assert not report.passed
    assert {o.name for o in report.failures} == {"cancel_mid_run", "fault_mid_run"}
    assert report["model_unchanged"].status == PASS  # a successful run removes the hook
    assert "FAIL" in str(report) and f"conformance of {plants.LeakOnError.name}" in str(report)


def test_an_analyzer_without_a_headline_must_say_why(registered, monkeypatch):
    report = check_analyzer(registered(plants.NoHeadline), HARNESS, raise_on_failure=False)
    assert [o.name for o in report.failures] == ["headline_randomization"]
    assert "neither headline_check nor headline_reason" in report["headline_randomization"].message
    monkeypatch.setattr(plants.NoHeadline, "headline_reason", "its checks hold for any weights")
    outcome = check_analyzer(plants.NoHeadline, HARNESS)["headline_randomization"]
    assert outcome.status == NA and "its checks hold for any weights" in outcome.message


def test_undeclared_libraries_are_named(registered):
    report = check_analyzer(registered(plants.UsesScipy), HARNESS, raise_on_failure=False)
    assert [o.name for o in report.failures] == ["libraries_declared"]
    assert report["libraries_declared"].message.startswith("imports scipy but does not list it")
