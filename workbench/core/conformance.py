"""The conformance suite every analyzer passes (scikit-learn's ``check_estimator``, for analyzers).

:func:`check_analyzer` runs one analyzer class through the contracts of ARCHITECTURE.md and returns a
:class:`Report`: one named :class:`Outcome` per check (``pass``, ``fail`` or ``n/a``, with a message).
With ``raise_on_failure`` (the default) it raises :class:`ConformanceError` listing every failure.

Checks, in the order they run:

``config``
    the default Config validates and round-trips through ``to_dict``/``from_dict``, JSON and strings
    (the CLI's ``--set key=value``); ``smoke_config`` is a valid override.
``run``
    a smoke run (``cls.smoke_config`` on a small trained model and data that the harness picks for the
    analyzer's first supported kind) finishes.
``model_unchanged``, ``cancel_mid_run``, ``fault_mid_run``
    after the smoke run, after a cancel pressed half-way through it (the context's cancel check raises
    on its k-th call, k = half the checks of the smoke run) and after the model's first parameterized
    layer raises on its n-th forward call (n = half the calls of the smoke run): no hook is left on the
    module handed to ``run`` and, unless the analyzer declares ``mutates_model``, its parameter and
    buffer values (bitwise), train/eval flags and requires_grad flags are unchanged. A cancelled run
    must end in :class:`Cancelled` (shown as cancelled, not failed); a faulted run must not succeed.
``save_load``
    ``Result.save``/``Result.load`` keeps the class, metrics, checks, config, info, provenance and
    every array (dtype, shape and bytes).
``figures_without_torch``
    a fresh interpreter with ``sys.modules["torch"] = None`` imports the result class's module (without
    running its package ``__init__``, which may import the analyzer), loads the saved result and builds
    its figures: at least one, each a plotly Figure with data.
``provenance``
    model id, weights sha256, data id, seed, device, a real dtype (the Config's ``dtype`` when it has
    one), the versions of python, torch, numpy and of every library the analyzer declares.
``libraries_declared``
    every third-party distribution the analyzer's modules import is stamped in provenance (the
    harness's ``always_versioned`` or ``cls.libraries``); plotly (figures only) is exempt.
``headline_randomization``
    ``cls.headline_check`` passes on the trained model and breaks on a weight-randomized copy: it fails,
    disappears, or keeps less than half of its margin to the threshold. An analyzer whose checks do not
    depend on learned weights declares ``headline_check = None`` with ``headline_reason`` (reported n/a).

The framework side (picking a model, loading private copies, batching, seeding, the runtime's gate,
stamping provenance) comes in through ``harness``: floor 1 does not import the runtime.
:class:`workbench.runtime.conformance.RuntimeHarness` is the workbench's own.

Example, a plug-in author's test::

    from workbench.core.conformance import check_analyzer
    from workbench.runtime.conformance import RuntimeHarness
    from my_plugin import MyAnalyzer

    def test_my_analyzer_conforms():
        report = check_analyzer(MyAnalyzer, RuntimeHarness(device="cpu"))  # raises ConformanceError
        print(report)                                                      # PASS / FAIL / N/A lines
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench.core import conformance_checks as cc
from workbench.core import conformance_probes as cp
from workbench.core.errors import Cancelled
from workbench.core.result import Result

PASS, FAIL, NA = "pass", "fail", "n/a"


class ConformanceError(AssertionError):
    """An analyzer broke the contract; the message lists every failed check."""


@dataclass
class Outcome:
    name: str
    status: str  # PASS, FAIL or NA
    message: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


@dataclass
class Report:
    """Named outcomes of one analyzer's conformance run, in check order; ``seconds`` is wall time."""

    analyzer: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, name: str, status: str, message: str) -> Outcome:
        self.outcomes.append(Outcome(name, status, message))
        return self.outcomes[-1]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    def __getitem__(self, name: str) -> Outcome:
        found = [o for o in self.outcomes if o.name == name]
        if not found:
            raise KeyError(f"no outcome {name!r}; have {', '.join(o.name for o in self.outcomes)}")
        return found[0]

    def __str__(self) -> str:
        lines = [f"conformance of {self.analyzer}: {'passed' if self.passed else 'FAILED'} "
                 f"({len(self.failures)} failure(s), {self.seconds:.1f} s)"]
        lines += [f"  {o.status.upper():4} {o.name}: {o.message}" for o in self.outcomes]
        return "\n".join(lines)


class Harness(Protocol):
    """What the suite needs from the framework (see :class:`workbench.runtime.conformance.RuntimeHarness`)."""

    device: str
    #: distributions whose versions every result's provenance carries (the runner's fixed list)
    always_versioned: tuple[str, ...]

    def smoke_inputs(self, cls: type) -> tuple[str, str | None]:
        """(model id, data id or None for the card's default) of a small trained model for ``cls``."""

    def load(self, model_id: str) -> Any:
        """A private ModelHandle (module in eval mode on ``device``, nobody else holds it)."""

    def randomized(self, handle: Any, seed: int) -> Any:
        """A ModelHandle on a copy of ``handle.module`` with every parameterized layer re-initialized."""

    def batch(self, handle: Any, data_id: str | None) -> Any:
        """The DataBatch the runner would build for ``handle.card`` and ``data_id``."""

    def context(self, seed: int) -> Any:
        """A fresh RunContext on ``device`` with ``seed``."""

    def execute(self, cls: type, handle: Any, batch: Any, config: Any, ctx: Any) -> Result:
        """Seed from ``ctx.seed`` and call ``cls().run`` the way the runner does (its gate included)."""

    def stamp(self, result: Result, cls: type, config: Any, handle: Any, batch: Any, ctx: Any) -> Result:
        """Fill in names, config and provenance the way the runner does."""


@dataclass
class _Setup:
    """One analyzer's conformance inputs: the config, model and data ids and the seed."""

    cls: type
    harness: Harness
    config: Any
    model_id: str | None
    data_id: str | None
    seed: int

    def handle(self) -> Any:
        return self.harness.load(self.model_id) if self.model_id else None

    def batch(self, handle: Any) -> Any:
        return self.harness.batch(handle, self.data_id) if handle is not None and self.cls.needs_data else None


@dataclass
class _Attempt:
    """What one run did: its result or error, the state differences, cancel checks and forward calls."""

    result: Result | None = None
    error: BaseException | None = None
    changes: list[str] = field(default_factory=list)
    cancel_checks: int = 0
    forward_calls: int = 0
    seconds: float = 0.0
    handle: Any = None
    batch: Any = None
    ctx: Any = None


def check_analyzer(cls: type, harness: Harness, *, model: str | None = "auto", data: str | None = None,
                   config: dict | None = None, seed: int = 0, raise_on_failure: bool = True) -> Report:
    """Run every conformance check on analyzer class ``cls``; see the module docstring for the list.

    ``model``: a zoo id, ``"auto"`` (the harness's small trained model for the analyzer's kind; no model
    for analyzers that need neither a model nor data: they build both) or None (run without a model).
    ``data``: a data id (None = the harness's choice). ``config``: overrides (default
    ``cls.smoke_config``). Returns the :class:`Report`; raises :class:`ConformanceError` when a check
    failed and ``raise_on_failure``.

    Example (in a plug-in's tests; the harness brings the runtime in, floor 1 does not import it)::

        from workbench.core.conformance import check_analyzer
        from workbench.runtime.conformance import RuntimeHarness

        report = check_analyzer(MyAnalyzer, RuntimeHarness(device="cpu"), model="digits_vgg.sk",
                                data="digits:test:32", config={"steps": 8})
        assert report["headline_randomization"].status == "pass", report
    """
    t0 = time.perf_counter()
    report = Report(cls.name)
    cfg = _check_config(cls, dict(cls.smoke_config if config is None else config), report)
    if cfg is not None:
        try:
            setup = _setup(cls, harness, cfg, model, data, seed)
        except Exception as e:  # noqa: BLE001 - reported
            report.add("run", FAIL, f"no model for a smoke run ({cc.describe_error(e)})")
        else:
            _check_runs(setup, report)
    report.seconds = time.perf_counter() - t0
    if raise_on_failure and not report.passed:
        raise ConformanceError(str(report))
    return report


def _setup(cls: type, harness: Harness, cfg: Any, model: str | None, data: str | None, seed: int) -> _Setup:
    if model == "auto":
        if not cls.needs_model and not cls.needs_data:
            model, data = None, None
        else:
            model, picked = harness.smoke_inputs(cls)
            data = data or picked
    return _Setup(cls, harness, cfg, model, data, seed)


def _check_config(cls: type, overrides: dict, report: Report) -> Any:
    problems = cc.config_problems(cls.Config)
    try:
        cfg = cc.config_from(cls.Config, overrides)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        problems.append(f"smoke_config {overrides} is not a valid override ({type(e).__name__}: {e})")
        cfg = None
    report.add("config", FAIL if problems else PASS,
               "; ".join(problems) or "default validates and round-trips (dict, JSON, strings)")
    return cfg


def _check_runs(s: _Setup, report: Report) -> None:
    clean = _attempt(s, cancel_at=None, fault_at=None)
    where = f"on {s.model_id} with {s.data_id or 'its default data'}" if s.model_id else "without a model"
    if clean.error is not None:
        report.add("run", FAIL, f"the smoke run {where} raised {cc.describe_error(clean.error)}")
        return
    report.add("run", PASS, f"smoke run {where} in {clean.seconds:.1f} s")
    result = s.harness.stamp(clean.result, s.cls, s.config, clean.handle, clean.batch, clean.ctx)
    _state_outcome(report, "model_unchanged", s, clean, "the run")
    _check_cancel(s, report, clean.cancel_checks)
    _check_fault(s, report, clean.forward_calls)
    _check_saved(s, report, result)
    problems = cc.provenance_problems(result, s.cls, s.config, s.harness, clean.handle, clean.batch, s.seed)
    report.add("provenance", FAIL if problems else PASS, "; ".join(problems) or "complete")
    missing = cc.undeclared_libraries(s.cls, s.harness.always_versioned)
    report.add("libraries_declared", FAIL if missing else PASS,
               f"imports {', '.join(missing)} but does not list it in `libraries` (so provenance lacks its "
               f"version)" if missing else f"declared: {', '.join(s.cls.libraries) or 'none needed'}")
    _check_headline(s, report, result)


def _check_saved(s: _Setup, report: Report, result: Result) -> None:
    """Save and load exactly; then build the figures of the saved result without torch."""
    with tempfile.TemporaryDirectory(prefix=f"conformance-{s.cls.name}-") as tmp:
        try:
            directory = result.save(Path(tmp) / "result")
            problems = cc.save_load_problems(result, Result.load(directory))
        except Exception as e:  # noqa: BLE001 - reported
            report.add("save_load", FAIL, f"save/load raised {cc.describe_error(e)}")
            report.add("figures_without_torch", NA, "nothing was saved to load")
            return
        report.add("save_load", FAIL if problems else PASS,
                   "; ".join(problems) or f"{len(result.arrays)} array(s), metrics, checks and provenance exact")
        ok, message = cc.figures_without_torch(directory, s.cls.result_class)
        report.add("figures_without_torch", PASS if ok else FAIL, message)


def _attempt(s: _Setup, cancel_at: int | None, fault_at: int | None) -> _Attempt:
    """Run once on a private model, counting cancel checks and forward calls of the first parameterized
    layer (raising at ``cancel_at`` / ``fault_at``), and diff the model's state around the run."""
    out = _Attempt()
    try:
        handle = s.handle()
        batch = s.batch(handle)
        ctx = s.harness.context(s.seed)
    except Exception as e:  # noqa: BLE001 - a model or data that cannot load is an outcome too
        out.error = e
        return out
    out.handle, out.batch, out.ctx = handle, batch, ctx
    module = handle.module if handle is not None else None
    before = cp.snapshot(module) if module is not None else None
    cancel = cp.CancelAt(ctx, cancel_at)
    fault = cp.ForwardFault(module, fault_at) if module is not None else None
    t0 = time.perf_counter()
    try:
        out.result = s.harness.execute(s.cls, handle, batch, s.config, ctx)
    except Exception as e:  # noqa: BLE001 - any error is an outcome here
        out.error = e
    finally:
        out.seconds = time.perf_counter() - t0
        cancel.restore()
        if fault is not None:
            fault.remove()
    out.cancel_checks, out.forward_calls = cancel.calls, fault.calls if fault is not None else 0
    if module is not None:
        out.changes = cp.state_changes(before, cp.snapshot(module), values=not s.cls.mutates_model)
    return out


def _state_outcome(report: Report, name: str, s: _Setup, a: _Attempt, when: str) -> None:
    if s.model_id is None:
        report.add(name, NA, "the analyzer runs without a model here (it builds what it studies)")
    elif a.changes:
        report.add(name, FAIL, f"after {when}: " + "; ".join(a.changes))
    else:
        kept = "no hook left" + ("" if s.cls.mutates_model else ", parameters, buffers and modes unchanged")
        report.add(name, PASS, f"after {when}: {kept}" + (" (mutates_model: values not compared)"
                                                         if s.cls.mutates_model else ""))


def _check_cancel(s: _Setup, report: Report, checks: int) -> None:
    if checks == 0:
        report.add("cancel_mid_run", NA, "the smoke run never checked for cancel (ctx.progress/check_cancel)")
        return
    k = max(1, checks // 2)
    a = _attempt(s, cancel_at=k, fault_at=None)
    if a.error is None and 0 < a.cancel_checks < k:  # cached work made this run shorter: cancel it earlier
        checks, k = a.cancel_checks, max(1, a.cancel_checks // 2)
        a = _attempt(s, cancel_at=k, fault_at=None)
    when = f"a cancel at check {k} of {checks}"
    if a.error is None:
        report.add("cancel_mid_run", FAIL, f"the run finished after {when}: a cancelled job must end cancelled")
    elif not isinstance(a.error, Cancelled):
        report.add("cancel_mid_run", FAIL, f"{when} surfaced as {cc.describe_error(a.error)}, not Cancelled")
    else:
        _state_outcome(report, "cancel_mid_run", s, a, when)


def _check_fault(s: _Setup, report: Report, calls: int) -> None:
    if s.model_id is None or calls == 0:
        report.add("fault_mid_run", NA, "the smoke run made no forward call on the given model")
        return
    n = calls // 2 + 1 if calls > 1 else 1  # after at least one call went through when there are two
    a = _attempt(s, cancel_at=None, fault_at=n)
    if a.error is None and 0 < a.forward_calls < n:  # cached work made this run shorter: fail it earlier
        calls, n = a.forward_calls, a.forward_calls // 2 + 1 if a.forward_calls > 1 else 1
        a = _attempt(s, cancel_at=None, fault_at=n)
    when = f"a forward error injected at call {n} of {calls}"
    if a.error is None:
        report.add("fault_mid_run", FAIL, f"the run finished after {when}: the analyzer swallowed a model error")
    else:
        _state_outcome(report, "fault_mid_run", s, a, when)


def _check_headline(s: _Setup, report: Report, trained: Result) -> None:
    name, cls = s.cls.headline_check, s.cls
    if name is None:
        if cls.headline_reason:
            report.add("headline_randomization", NA, f"no check depends on learned weights: {cls.headline_reason}")
        else:
            report.add("headline_randomization", FAIL, "declares neither headline_check nor headline_reason: name "
                       "the check a weight-randomized model must break, or say why none depends on the weights")
        return
    if s.model_id is None:
        report.add("headline_randomization", FAIL, f"declares headline_check {name!r} but runs without a model")
        return
    ok, message = cc.headline_verdict(name, trained, lambda: _randomized_result(s))
    report.add("headline_randomization", PASS if ok else FAIL, message)


def _randomized_result(s: _Setup) -> Result:
    handle = s.harness.randomized(s.handle(), s.seed)
    return s.harness.execute(s.cls, handle, s.batch(handle), s.config, s.harness.context(s.seed))


__all__ = ["ConformanceError", "Harness", "Outcome", "Report", "check_analyzer", "FAIL", "NA", "PASS"]
