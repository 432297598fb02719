import threading
from dataclasses import dataclass

import pytest
import torch

from workbench.core import Analyzer, Result, option, register_analyzer
from workbench.core.cache import BoundedCache
from workbench.core.errors import Cancelled, ComputeError, ConfigError, DataError, UnsupportedModelError
from workbench.core.hooks import count_hooks
from workbench.runtime import RunContext, RunSpec, load_model, run
from workbench.runtime.batching import run_batched
from workbench.runtime.jobs import Job


@dataclass(frozen=True)
class _Cfg:
    fail: bool = option(False, "raise after adding a hook")


@register_analyzer
class LeakyHooks(Analyzer):
    """Test-only analyzer that forgets to remove a hook: the runner must catch it."""

    name = "test_leaky_hooks"
    Config = _Cfg
    supports = ("image2d",)

    def run(self, model, data, config, ctx):
        model.module.register_forward_hook(lambda *a: None)
        return Result(self.name)


def test_oom_halves_the_batch_and_keeps_results():
    ctx = RunContext(batch_size=16)
    seen = []

    def fn(chunk):
        seen.append(len(chunk))
        if len(chunk) > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        return chunk * 2

    out = run_batched(fn, torch.arange(10.0), ctx)
    assert torch.equal(out, torch.arange(10.0) * 2) and ctx.batch_size == 4 and seen[:3] == [10, 8, 4]


def test_progress_counts_samples_not_chunk_ends():
    """13 samples in chunks of 4: the last report says 13/13 and the fraction never passes 1."""
    reports = []
    ctx = RunContext(on_progress=lambda f, msg: reports.append((f, msg)))
    ctx.batch_size = 4
    run_batched(lambda c: c, torch.zeros(13), ctx, label="IG")
    assert [m for _, m in reports] == ["IG 4/13", "IG 8/13", "IG 12/13", "IG 13/13"]
    assert max(f for f, _ in reports) <= 1.0


def test_other_errors_are_not_retried():
    with pytest.raises(ValueError):
        run_batched(lambda c: (_ for _ in ()).throw(ValueError("boom")), torch.zeros(4), RunContext())


def test_cancel_stops_between_batches():
    ctx = RunContext(batch_size=1)
    calls = []

    def fn(chunk):
        calls.append(1)
        if len(calls) == 2:
            ctx.cancel.cancel()
        return chunk

    with pytest.raises(Cancelled):
        run_batched(fn, torch.zeros(10), ctx)
    assert len(calls) == 2


def test_bounded_cache_evicts_oldest():
    c = BoundedCache(2)
    for k in "abc":
        c.put(k, k)
    assert "a" not in c and len(c) == 2 and c.get("c") == "c"


def test_runner_catches_a_hook_left_behind(toy_card):
    module = load_model("toy_cnn.test", "cpu").module
    with pytest.raises(ComputeError, match="left 1 hook"):
        run(RunSpec("test_leaky_hooks", "toy_cnn.test", "digits:0", device="cpu"))
    for m in module.modules():  # clean the shared toy so later tests start from zero
        m._forward_hooks.clear()
    assert count_hooks(module) == 0


def test_runner_validates_before_running(toy_card):
    with pytest.raises(ConfigError):
        run(RunSpec("attribution", "toy_cnn.test", "digits:0", {"n_steps": "0"}))
    with pytest.raises(DataError):
        run(RunSpec("attribution", "toy_cnn.test", "mnist1d:0"))
    with pytest.raises(UnsupportedModelError):
        run(RunSpec("linear_scope", "mnist1d_cnn.default", "mnist1d:0"))


def test_provenance_and_finite_check_are_stamped(toy_card):
    r = run(RunSpec("attribution", "toy_cnn.test", "digits:0,1", {"method": "saliency", "sanity_check": "false"},
                    device="cpu", seed=5))
    p = r.provenance
    assert (p.model_id, p.data_id, p.seed, p.device) == ("toy_cnn.test", "digits:0,1", 5, "cpu")
    assert p.duration_s > 0 and "torch" in p.versions and len(p.weights_sha256) == 64
    assert any(c.name == "finite_values" and c.passed for c in r.checks)
    assert r.arrays["attr_saliency"].shape == (2, 16, 16)


def test_jobs_report_progress_done_failed_and_cancelled(toy_card):
    ok = Job(RunSpec("attribution", "toy_cnn.test", "digits:0", {"method": "saliency"}, device="cpu"))
    ok.start().wait(60)
    assert ok.state == "done" and ok.fraction == 1.0 and ok.result is not None
    bad = Job(RunSpec("attribution", "toy_cnn.test", "digits:0", {"method": "bogus"})).start().wait(60)
    assert bad.state == "failed" and bad.error.startswith("bad_config:") and "\n" not in bad.error
    gate = threading.Event()
    slow = Job(RunSpec("attribution", "toy_cnn.test", "digits:test:64",
                       {"method": "occlusion", "occlusion_window": "2", "occlusion_stride": "1"}, device="cpu",
                       batch_size=1))
    slow.ctx.on_progress = lambda f, m: gate.set()
    slow.start()
    assert gate.wait(30)
    slow.cancel()
    slow.wait(60)
    assert slow.state == "cancelled"


@dataclass(frozen=True)
class _Cfg2:
    mode: str = option("weights", "what to tamper with", choices=("weights", "train", "none"))


@register_analyzer
class Tamper(Analyzer):
    """Test-only analyzer that changes the shared model: the runner must refuse and evict it."""

    name = "test_tamper"
    Config = _Cfg2
    supports = ("image2d",)

    def run(self, model, data, config, ctx):
        if config.mode == "weights":
            with torch.no_grad():
                next(model.module.parameters()).mul_(1.0)
        elif config.mode == "train":
            model.module.train()
        return Result(self.name)


@pytest.mark.parametrize("mode", ["weights", "train"])
def test_runner_refuses_an_analyzer_that_changes_the_shared_model(toy_card, mode):
    first = load_model("toy_cnn.test", "cpu").module
    with pytest.raises(ComputeError, match="changed the parameters or mode"):
        run(RunSpec("test_tamper", "toy_cnn.test", "digits:0", {"mode": mode}, device="cpu"))
    fresh = load_model("toy_cnn.test", "cpu").module
    assert fresh is not first and not fresh.training  # evicted and reloaded pristine
    run(RunSpec("test_tamper", "toy_cnn.test", "digits:0", {"mode": "none"}, device="cpu"))  # control passes
