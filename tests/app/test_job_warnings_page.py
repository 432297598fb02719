"""A warning raised inside a page's job (a loader's, a library's) is shown under the result it came with."""

import threading
import warnings
from pathlib import Path

from streamlit.testing.v1 import AppTest

import workbench.runtime.jobs as jobs
from workbench.core.result import Result
from workbench.runtime import RunSpec

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")


def test_a_warning_raised_in_the_job_is_shown_under_its_result_and_not_under_another(monkeypatch):
    go = threading.Event()

    def warns(spec, ctx):
        go.wait(30)
        warnings.warn("night.edf: matched channel names loosely: fp1", UserWarning, stacklevel=1)
        return Result("learning_stop", model=spec.model, config={"max_epochs": 2})

    monkeypatch.setattr(jobs, "run", warns)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/learning_stop.py")
    at.run()
    at.session_state["job.learning_stop"] = jobs.start_job(RunSpec("learning_stop", "digits_vgg.sk"))
    go.set()
    at.session_state["job.learning_stop"].wait(30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["result.learning_stop"].model == "digits_vgg.sk"
    shown = [w.value for w in at.warning if "matched channel names loosely" in w.value]
    assert shown == ["Warning from the run: night.edf: matched channel names loosely: fp1"]
    at.session_state["result.learning_stop"] = Result("learning_stop", model="other", config={})  # not the job's
    at.session_state["learning_stop.runs"] = []  # the page overlays finished runs; one result is enough here
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("matched channel names loosely" in w.value for w in at.warning)


def test_a_failed_jobs_warnings_are_shown_with_its_error_line(monkeypatch):
    from workbench.core.errors import WorkbenchError

    def fails(spec, ctx):
        warnings.warn("night.edf: channel Fp1 matched loosely as FP1-REF", UserWarning, stacklevel=1)
        raise WorkbenchError("night.edf lacks the channel Oz")

    monkeypatch.setattr(jobs, "run", fails)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/learning_stop.py")
    at.run()
    at.session_state["job.learning_stop"] = jobs.start_job(RunSpec("learning_stop", "digits_vgg.sk")).wait(30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("lacks the channel Oz" in e.value for e in at.error)
    assert any("matched loosely as FP1-REF" in w.value for w in at.warning)
