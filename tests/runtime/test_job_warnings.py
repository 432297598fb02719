"""Warnings raised inside a background job reach that job (one line each, no repeats), every job's own,
even when two jobs warn from the same line or run at the same time; other threads' warnings are left to
the previous handler, once per place as Python's "default" action would."""

import threading
import warnings

import workbench.runtime.jobs as jobs
from workbench.core.result import Result
from workbench.runtime import RunSpec


def _warns(spec, ctx):
    """A stand-in for an analyzer run that warns like a loader does (the same line for every job)."""
    for _ in range(3):  # repeats are one line on the job
        warnings.warn(f"{spec.model}: matched channel names loosely: fp1", UserWarning, stacklevel=1)
    warnings.warn("mean of empty slice", RuntimeWarning, stacklevel=1)
    return Result(spec.analyzer, model=spec.model)


def test_a_job_whose_analyzer_warns_carries_the_warning_and_a_second_job_gets_it_again(monkeypatch):
    monkeypatch.setattr(jobs, "run", _warns)
    first = jobs.start_job(RunSpec("eeg_saliency", "night.edf")).wait(30)
    second = jobs.start_job(RunSpec("eeg_saliency", "night.edf")).wait(30)
    assert first.state == second.state == "done"
    expected = ["night.edf: matched channel names loosely: fp1", "RuntimeWarning: mean of empty slice"]
    assert first.warnings == expected
    # the same text from the same line: Python's once-per-place registry would hide it from the second job
    assert second.warnings == expected


def test_two_concurrent_jobs_keep_their_own_warnings(monkeypatch):
    both_started, first_warned = threading.Barrier(2, timeout=30), threading.Event()

    def interleaved(spec, ctx):
        both_started.wait()
        if spec.model == "b":
            first_warned.wait(30)  # b warns while a is still running and after a warned
        warnings.warn(f"only {spec.model}", UserWarning, stacklevel=1)
        if spec.model == "a":
            first_warned.set()
            both_started.wait()  # a is still running while b warns
        else:
            both_started.wait()
        return Result(spec.analyzer, model=spec.model)

    monkeypatch.setattr(jobs, "run", interleaved)
    a, b = jobs.start_job(RunSpec("x", "a")), jobs.start_job(RunSpec("x", "b"))
    a.wait(30), b.wait(30)
    assert a.state == b.state == "done", (a.error, b.error)
    assert a.warnings == ["only a"] and b.warnings == ["only b"]


def test_warnings_outside_a_job_go_to_the_previous_handler_once_per_place(monkeypatch):
    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *a, **k: shown.append(str(message)))
    monkeypatch.setattr(jobs, "run", _warns)
    job = jobs.start_job(RunSpec("x", "mine.edf")).wait(30)
    for _ in range(2):
        warnings.warn("ui thread warning 7f3a", UserWarning, stacklevel=1)
    assert shown == ["ui thread warning 7f3a"]  # not the job's, and not twice
    assert "ui thread warning 7f3a" not in job.warnings and len(job.warnings) == 2


def test_the_cli_prints_a_warning_raised_during_a_command_as_one_line(monkeypatch, capsys):
    from workbench import cli

    def warns(args):
        warnings.warn("night.edf: 12 trailing bytes ignored\nsecond line", UserWarning, stacklevel=1)
        warnings.warn("overflow in exp", RuntimeWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_cmd_analyzers", warns)
    assert cli.main(["analyzers"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "workbench: warning: night.edf: 12 trailing bytes ignored" in err
    assert "workbench: warning: RuntimeWarning: overflow in exp" in err
    assert not any("second line" in e or "warnings.warn" in e or "UserWarning" in e for e in err)


def test_warnings_collected_on_the_ui_thread_leave_a_running_jobs_own_alone(monkeypatch):
    inside, job_warned = threading.Event(), threading.Event()

    def warns_meanwhile(spec, ctx):
        inside.wait(30)
        warnings.warn("the job's own 91c2", UserWarning, stacklevel=1)
        job_warned.set()
        return Result(spec.analyzer)

    monkeypatch.setattr(jobs, "run", warns_meanwhile)
    job = jobs.start_job(RunSpec("x", "m"))
    with jobs.collected_warnings() as lines:
        inside.set()
        job_warned.wait(30)
        for _ in range(2):
            warnings.warn("rec.edf: 12 trailing bytes ignored", UserWarning, stacklevel=1)
    job.wait(30)
    assert lines == ["rec.edf: 12 trailing bytes ignored"] and job.warnings == ["the job's own 91c2"]
