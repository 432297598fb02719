"""The ERF over a whole data set (issue 15), the measured ERF chunk and the shape pass without a forward
(issue 21): same maps and boxes as before, computed with less work."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from analyzers.receptive_field import erf as rf_erf
from analyzers.receptive_field import graph
from analyzers.receptive_field.graph import analyze, truncated
from analyzers.receptive_field.ops import tensor_shape
from workbench.core.errors import Cancelled
from workbench.data.registry import resolve
from workbench.runtime import RunContext, RunSpec, load_model, make_batch, run

FAST = {"probe": "false", "compare_untrained": "false", "layer": "features"}


@pytest.mark.zoo("digits_vgg.sk")
def test_erf_over_a_whole_split_uses_every_sample_with_progress():
    n = len(resolve("digits:test")[1])
    seen: list[str] = []
    r = run(RunSpec("receptive_field", "digits_vgg.sk", "digits:test", {**FAST, "n_images": "0"}, device="cpu"),
            RunContext(on_progress=lambda f, m="": seen.append(m)))
    assert r.metrics["erf_images"] == n > 300 and r.info["erf_inputs"] == f"{n} given input(s)"
    erf_steps = [m for m in seen if m.startswith("ERF ")]
    assert len(erf_steps) >= 3 and erf_steps[-1] == f"ERF {n}/{n}"  # chunk by chunk, up to the last sample
    # the set-level map is the plain mean of the per-image maps, whatever chunks were measured best
    handle = load_model("digits_vgg.sk", "cpu")
    an = analyze(handle.module, handle.card.input_shape)
    row = an.find("features")
    x = make_batch(handle.card, "digits:test", "cpu").x
    one = rf_erf.erf_map(truncated(an.gm, row.node), x, row.box.dims, "replknet", RunContext(), chunk=1)[0]
    assert np.allclose(r.arrays["erf_map"], one, rtol=1e-5, atol=1e-12)


@pytest.mark.zoo("digits_vgg.sk")
def test_erf_over_a_set_can_be_cancelled_between_chunks():
    ctx = RunContext()
    steps: list[str] = []

    def progress(_f, m=""):
        steps.append(m)
        if m.startswith("ERF ") and len([s for s in steps if s.startswith("ERF ")]) == 2:
            ctx.cancel.cancel()

    ctx.on_progress = progress
    with pytest.raises(Cancelled):
        run(RunSpec("receptive_field", "digits_vgg.sk", "digits:test", {**FAST, "n_images": "0"}, device="cpu"), ctx)
    assert not any(s.startswith("ERF ") and s.endswith("/" + s.split("/")[-1]) and
                   s.split(" ")[1].split("/")[0] == s.split("/")[-1] for s in steps)  # never reached the end


def test_the_chunk_is_measured_and_the_map_does_not_depend_on_it():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)).eval()
    x = torch.randn(40, 1, 24, 24)
    ctx = RunContext(batch_size=16)
    auto = rf_erf.erf_map(net, x, (2, 3), "replknet", ctx)[0]
    assert 1 <= ctx.batch_size <= 16
    fixed = rf_erf.erf_map(net, x, (2, 3), "replknet", RunContext(batch_size=40), chunk=40)[0]
    assert np.allclose(auto, fixed, rtol=1e-6, atol=1e-12)
    # the search: one warm-up chunk, then 1, 2, 4, ... while the time per image falls by 3 %
    timings: dict = {}
    assert rf_erf._next_chunk(timings, 1, 9.0, 16, first=True) == 1 and timings == {}
    assert rf_erf._next_chunk(timings, 1, 1.0, 16, first=False) == 2
    assert rf_erf._next_chunk(timings, 2, 1.0, 16, first=False) == 4  # 0.5 s per image
    assert rf_erf._next_chunk(timings, 4, 1.6, 16, first=False) == 8  # 0.4
    assert rf_erf._next_chunk(timings, 8, 4.0, 16, first=False) == 4  # 0.5: slower, back to the best
    assert rf_erf._next_chunk({}, 16, 1.0, 16, first=False) == 16  # the cap ends the search


def test_shapes_come_without_a_forward_and_leave_train_mode_statistics_alone():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                      nn.Conv2d(4, 4, 3)).train()
    calls = []
    m[0].register_forward_hook(lambda *a: calls.append(1))
    before = m[1].running_mean.clone(), int(m[1].num_batches_tracked)
    a = analyze(m, (1, 33, 33))
    assert not calls  # no real forward: shapes flowed on the meta device
    assert torch.equal(m[1].running_mean, before[0]) and int(m[1].num_batches_tracked) == before[1]
    assert a.find("0").box.r == (3, 3) and a.find("1").box.kind == "global"  # batch statistics: the whole input
    m.eval()
    assert analyze(m, (1, 33, 33)).find("4").box.r == (15, 15) and not calls


class _Scaled(nn.Conv2d):
    """A leaf (Conv2d subclass) whose forward reads a value from its input: meta tensors hold none, so the
    real pass must run it."""

    def __init__(self) -> None:
        super().__init__(1, 2, 5, padding=2)

    def forward(self, x):
        return super().forward(x) * (1.0 + 0.0 * float(x.detach().abs().sum().item()))


def test_a_model_meta_cannot_run_falls_back_to_the_real_pass_with_the_same_boxes():
    m = nn.Sequential(_Scaled(), nn.ReLU(), nn.Conv2d(2, 2, 3)).eval()
    a = analyze(m, (1, 20, 20))
    assert a.find("2").box.r == (7, 7) and a.find("0").box.r == (5, 5) and not a.warnings
    assert tensor_shape(a.find("2").node) == (1, 2, 18, 18) and a.default_layer().name == "2"


def test_the_analysis_is_cached_per_module_and_input_and_a_replaced_layer_is_seen():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3)).eval()
    first = analyze(m, (1, 16, 16))
    assert analyze(m, (1, 16, 16)) is first and analyze(m, (1, 20, 20)) is not first
    m[2] = nn.Conv2d(2, 2, 5)
    assert analyze(m, (1, 16, 16)).find("2").box.r == (7, 7)  # not the cached 5
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(analyze(m, (1, 18, 18)).find("2").box.r))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(7, 7)] * 4 and len(graph._CACHE) <= graph._CACHE_SIZE
