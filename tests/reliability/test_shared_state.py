"""Plan items 9, 11, 12, 14, 15, 16: shared-model concurrency, memory ceiling, cache bounds,
cancellation latency, non-finite values, determinism."""

from __future__ import annotations

import gc
import hashlib
import resource
import threading
import time
import weakref

import numpy as np
import pytest
import torch

from workbench.core.cache import BoundedCache
from workbench.core.cards import register_card
from workbench.core.hooks import count_hooks
from workbench.runtime import RunSpec, load_model, run
from workbench.runtime.jobs import Job

MIX = [
    {"method": "integrated_gradients", "n_steps": "8", "sanity_check": "false"},
    {"method": "grad_cam", "sanity_check": "false"},  # captum hooks on the shared module
    {"method": "saliency,input_x_gradient", "sanity_check": "true"},  # deep copy + re-init
    {"method": "occlusion", "occlusion_window": "4", "occlusion_stride": "4", "sanity_check": "false"},
]


def _digest(result) -> str:
    h = hashlib.sha256()
    for k in sorted(result.arrays):
        h.update(k.encode() + np.ascontiguousarray(result.arrays[k]).tobytes())
    return h.hexdigest()


def _param_sum(module) -> str:
    return hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in module.state_dict().values())).hexdigest()


def _eight_sessions(specs: list[RunSpec], jobs: int = 50) -> dict:
    """8 threads x ``jobs`` runs cycling through ``specs`` on the shared toy model; returns what went wrong:
    errors, results not bit-identical to the sequential reference, and whether the shared model was
    tampered with (evicted, hooks left, parameters or mode changed)."""
    module = load_model("toy_cnn.test", "cpu").module
    before = _param_sum(module)
    reference = [_digest(run(s)) for s in specs]
    errors, mismatches = [], []

    def session(k: int) -> None:
        for i in range(jobs):
            j = (i + k) % len(specs)
            try:
                if _digest(run(specs[j])) != reference[j]:
                    mismatches.append((k, i, specs[j].analyzer))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

    threads = [threading.Thread(target=session, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    tampered = load_model("toy_cnn.test", "cpu").module is not module or count_hooks(module) != 0 \
        or _param_sum(module) != before or module.training
    return {"errors": errors, "mismatches": mismatches, "tampered": tampered}


def test_eight_sessions_fifty_jobs_are_bit_identical_to_sequential(toy_card):
    outcome = _eight_sessions([RunSpec("attribution", "toy_cnn.test", "digits:0,1", cfg, device="cpu") for cfg in MIX])
    assert outcome == {"errors": [], "mismatches": [], "tampered": False}


ANALYZER_MIX = [("lrp", {"sanity_check": "false"}),
                ("lrp", {"composite": "epsilon_gamma_box", "sanity_check": "false"}),  # zennit canonizers
                ("kernel_spectra", {"parts": "singular_values,frequency"}), ("receptive_field", {"erf": "false"}),
                ("linear_scope", {"svd_k": "0"}), ("attribution", {"method": "grad_cam", "sanity_check": "false"})]


def test_eight_sessions_mixing_analyzers_on_one_shared_model(toy_card):
    outcome = _eight_sessions([RunSpec(a, "toy_cnn.test", "digits:0", cfg, device="cpu") for a, cfg in ANALYZER_MIX])
    assert outcome == {"errors": [], "mismatches": [], "tampered": False}


@pytest.mark.parametrize("analyzer, cfg", ANALYZER_MIX[1:], ids=[a for a, _ in ANALYZER_MIX[1:]])
def test_memory_ceiling_per_analyzer(toy_card, analyzer, cfg):
    spec = RunSpec(analyzer, "toy_cnn.test", "digits:0", cfg, device="cpu")
    for _ in range(5):
        run(spec)
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    refs = [weakref.ref(run(spec)) for _ in range(200)]
    gc.collect()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0 <= 50
    assert sum(r() is not None for r in refs) == 0


def test_memory_ceiling_over_200_runs(toy_card):
    spec = RunSpec("attribution", "toy_cnn.test", "digits:0", {"method": "saliency,grad_cam"}, device="cpu")
    for _ in range(10):
        run(spec)
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    refs = []
    for _ in range(200):
        refs.append(weakref.ref(run(spec)))
    gc.collect()
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    assert growth <= 50, f"RSS grew {growth:.1f} MB"
    assert sum(r() is not None for r in refs) == 0  # results are collectable


def test_cache_bounds_hold_under_many_models(toy_card):
    cache, built = BoundedCache(3), []
    for i in range(20):
        cache.get_or_create(i, lambda i=i: built.append(i) or i)
        assert len(cache) <= 3
    for _ in range(3):
        cache.get_or_create(19, lambda: built.append("again"))
    assert len(built) == 20  # no reload storm for a hot entry


def test_cancel_is_acknowledged_within_a_batch_and_the_next_job_runs(toy_card):
    latencies = []
    for _ in range(5):
        job = Job(RunSpec("attribution", "toy_cnn.test", "digits:test:200",
                          {"method": "occlusion", "occlusion_window": "2", "occlusion_stride": "1"},
                          device="cpu", batch_size=1))
        started = threading.Event()
        job.ctx.on_progress = lambda f, m, ev=started: ev.set() if f > 0 else None
        job.start()
        assert started.wait(30)
        t = time.perf_counter()
        job.cancel()
        job.wait(30)
        latencies.append(time.perf_counter() - t)
        assert job.state == "cancelled" and job.error == ""
        nxt = Job(RunSpec("attribution", "toy_cnn.test", "digits:0", {"method": "saliency"}, device="cpu"))
        assert nxt.start().wait(30).state == "done"
    assert max(latencies) <= 2.0, latencies


class _NaNNet(torch.nn.Module):
    """A model whose output is NaN for inputs with a bright top-left pixel: (N, 1, 16, 16) -> (N, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        return torch.where(x[:, :, :1, :1].flatten(1) > 0.5, torch.full_like(y, float("nan")), y)


def test_non_finite_outputs_fail_a_visible_check(toy_card):
    import dataclasses

    card = dataclasses.replace(toy_card, id="toy_nan.test", build=_NaNNet, loader=lambda c: _NaNNet().eval())
    register_card(card, replace=True)
    from workbench.core.sample import Sample
    from workbench.data import store_upload

    img = np.zeros((16, 16), np.float32)
    img[0, 0] = 1.0
    data_id = store_upload(Sample("upload:nanpixel0001", "image", img))
    r = run(RunSpec("attribution", "toy_nan.test", data_id, {"method": "saliency", "sanity_check": "false"},
                    device="cpu"))
    check = next(c for c in r.checks if c.name == "finite_values")
    assert not check.passed and check.value > 0 and not r.passed
    from workbench.report import render_report

    assert "Failing checks" in render_report([r])  # the banner, not a blank plot


@pytest.mark.parametrize("cfg", MIX)
def test_same_seed_is_bitwise_deterministic_on_cpu(toy_card, cfg):
    a = run(RunSpec("attribution", "toy_cnn.test", "digits:0,1", cfg, device="cpu", seed=3))
    b = run(RunSpec("attribution", "toy_cnn.test", "digits:0,1", cfg, device="cpu", seed=3))
    assert _digest(a) == _digest(b)
