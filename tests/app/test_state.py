"""Coherent state on the pages: forms survive navigation, the data picker follows the model, presets fill
the form, a failing check carries its next step and a rerun with the fix; queued jobs say what they wait for."""

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

import workbench.runtime.jobs as jobs
from workbench.core.cards import get_card
from workbench.core.result import Check, Result
from workbench.runtime import RunSpec

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")


def _generic(at: AppTest, name: str) -> AppTest:
    at._page_hash = calc_hash(name)  # the generic page is registered once per analyzer (see test_pages.py)
    at.run()
    return at


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


@pytest.mark.zoo("digits_vgg.sk")
def test_a_form_keeps_its_values_when_the_user_leaves_the_page_and_comes_back():
    at = _generic(_app(), "attribution")
    at.selectbox(key="attribution.model").set_value("digits_vgg.sk").run()
    at.multiselect(key="attribution.method").set_value(["saliency"]).run()
    at.switch_page("../pages/home.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    _generic(at, "attribution")
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="attribution.method").value == ["saliency"]
    assert at.selectbox(key="attribution.model").value == "digits_vgg.sk"


@pytest.mark.zoo("digits_vgg.sk")
def test_the_data_picker_follows_the_model_and_says_why_a_set_is_not_offered():
    if not get_card("efficientnet_lite0.imagenet").status(get_card("efficientnet_lite0.imagenet")).get("available"):
        pytest.skip("efficientnet_lite0.imagenet weights are not available")
    at = _generic(_app(), "attribution")
    at.selectbox(key="attribution.model").set_value("digits_vgg.sk").run()
    at.selectbox(key="attribution.set.digits_vgg.sk").set_value("digits").run()
    assert at.selectbox(key="attribution.sample.digits_vgg.sk").value.startswith("digits:")
    at.selectbox(key="attribution.model").set_value("efficientnet_lite0.imagenet").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "digits" not in at.selectbox(key="attribution.set.efficientnet_lite0.imagenet").options
    assert not at.selectbox(key="attribution.sample.efficientnet_lite0.imagenet").value.startswith("digits:")
    assert any("Not offered for this model" in c.value and "digits" in c.value for c in at.caption)


@pytest.mark.zoo("digits_vgg.sk")
def test_the_paper_preset_is_one_click_away_with_its_estimate_and_back():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/learning_stop.py")
    at.run()
    quick = at.number_input(key="learning_stop.max_epochs").value
    next(b for b in at.button if b.label == "Preset: paper").click().run()
    assert at.number_input(key="learning_stop.max_epochs").value == 100 > quick
    assert at.number_input(key="learning_stop.window").value == 5
    assert any("Preset **paper**" in i.value and "GPU" in i.value for i in at.info)
    next(b for b in at.button if b.label.startswith("Quick defaults")).click().run()
    assert at.number_input(key="learning_stop.max_epochs").value == quick
    assert not any("Preset **paper**" in i.value for i in at.info)


@pytest.mark.zoo("digits_vgg.sk")
def test_a_failing_check_shows_its_next_step_and_reruns_with_the_fix():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/learning_stop.py")
    at.run()
    shown = Result("learning_stop", model="digits_vgg.sk", config={"max_epochs": 2, "overhead_pairs": 2},
                   checks=[Check("monitor_overhead", False, 57.9, 5.0, "extra time per step",
                                 next_step="time more steps", fix={"overhead_pairs": 30})])
    at.session_state["result.learning_stop"] = shown
    at.run()
    assert any("Next step:" in w.value and "time more steps" in w.value for w in at.warning)
    assert any("model digits_vgg.sk" in c.value for c in at.caption)  # the settings the result came from
    next(b for b in at.button if b.label == "Rerun with the fix").click().run()
    job = at.session_state["job.learning_stop"]
    try:
        assert job.spec.config == {"max_epochs": 2, "overhead_pairs": 30} and job.spec.model == "digits_vgg.sk"
        assert at.number_input(key="learning_stop.overhead_pairs").value == 30  # the form shows the fix
    finally:
        job.cancel()
        job.wait(120)


def test_a_job_waiting_behind_another_says_so_and_what_it_waits_for(monkeypatch):
    release, go = threading.Event(), threading.Event()

    def fake_run(spec, ctx):
        if spec.analyzer == "first":
            ctx.progress(0.5, "working")
        else:  # waits (for the model, in a real run), then works
            go.wait(30)
            ctx.progress(0.1, "working")
        release.wait(30)
        return Result(spec.analyzer)

    monkeypatch.setattr(jobs, "run", fake_run)
    first = jobs.start_job(RunSpec("first", "digits_vgg.sk"))
    deadline = time.time() + 10
    while first.fraction < 0.5 and time.time() < deadline:
        time.sleep(0.01)
    second = jobs.start_job(RunSpec("second", "digits_vgg.sk"))
    try:
        assert second.queued_behind() == [first] and first.queued_behind() == []
        assert first.label == "first on digits_vgg.sk"
        first.started -= 10  # half done after 10 s: about 10 s left
        assert first.eta_s() == pytest.approx(10, abs=1) and second.eta_s() is None
        go.set()
        while second.fraction < 0.1 and time.time() < deadline + 10:
            time.sleep(0.01)
        assert second.queued_behind() == []  # working now, no longer queued
    finally:
        release.set()
        first.wait(30)
        second.wait(30)
    assert first.state == second.state == "done" and second.queued_behind() == []
    assert first not in jobs._ACTIVE and second not in jobs._ACTIVE


def test_every_preset_names_valid_settings_and_says_what_it_costs():
    from workbench.core.analyzer import list_analyzers
    from workbench.core.config import from_dict, to_dict

    with_presets = [a for a in list_analyzers() if a.presets]
    assert {"learning_stop", "transferability", "kernel_spectra"} <= {a.name for a in with_presets}
    for a in with_presets:
        for name, p in a.presets.items():
            assert "CPU" in p["about"] and "GPU" in p["about"], (a.name, name)
            cfg = from_dict(a.Config, p["config"])
            assert all(getattr(cfg, k) == v for k, v in p["config"].items()), (a.name, name)
            defaults = to_dict(a.Config())
            assert a.work_units({**defaults, **p["config"]}) > 2 * a.work_units(defaults), (a.name, name)


def test_a_checks_next_step_and_fix_survive_save_and_load(tmp_path):
    r = Result("learning_stop", checks=[Check("monitor_overhead", False, 57.9, 5.0, "m", next_step="time more steps",
                                              fix={"overhead_pairs": 30}), Check("finite_values", True, 0, 0, "ok")])
    back = Result.load(r.save(tmp_path / "r"))
    assert back.checks[0].next_step == "time more steps" and back.checks[0].fix == {"overhead_pairs": 30}
    assert back.checks[1].next_step == "" and back.checks[1].fix == {}
    assert "next_step" not in r.checks[1].to_dict()  # a passing check's record is unchanged
