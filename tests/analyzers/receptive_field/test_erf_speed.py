"""The fast ERF path (input-only weights, conv + batch-norm folding, channels-last, a measured chunk) gives the
map of a literal one-image-at-a-time loop, never touches the caller's module, and falls back to the plain
layout for a forward that cannot take channels-last."""

from __future__ import annotations

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from analyzers.receptive_field import erf as rf_erf
from workbench.runtime import RunContext

F64 = torch.float64


class BNNet(nn.Module):
    """conv + BN + ReLU, max-pool, conv + BN + ReLU, conv: eval mode with non-trivial running statistics."""

    def __init__(self, view: bool = False) -> None:
        super().__init__()
        self.view = view
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c3 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.b1(self.c1(x)))
        if self.view:  # .view needs the plain layout: a channels-last tensor makes it raise
            n, c, hh, ww = h.shape
            h = h.view(n, c * hh * ww).view(n, c, hh, ww)
        h = nn.functional.max_pool2d(h, 2)
        return self.c3(torch.relu(self.b2(self.c2(h))))


def _net(view=False, dtype=F64) -> fx.GraphModule:
    torch.manual_seed(0)
    m = BNNet(view).eval()
    for b in (m.b1, m.b2):
        b.running_mean.uniform_(-0.5, 0.5)
        b.running_var.uniform_(0.5, 2.0)
        b.weight.data.uniform_(0.5, 1.5)
        b.bias.data.uniform_(-0.5, 0.5)
    return fx.symbolic_trace(m.to(dtype))


def _loop(net, x) -> np.ndarray:
    """The literal reference (RepLKNet's script): one image per pass, ReLU of the gradient, channel sum, mean."""
    total = 0
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        out = net(xi)
        s = torch.relu(out[:, :, out.shape[2] // 2, out.shape[3] // 2]).sum()
        total = total + torch.relu(torch.autograd.grad(s, xi)[0]).sum(1)[0].double()
    return (total / len(x)).numpy()


def test_the_fast_map_equals_a_literal_loop_and_leaves_the_module_alone():
    net = _net()
    x = torch.randn(11, 3, 16, 16, generator=torch.Generator().manual_seed(1)).to(F64)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = {k: (id(p), p.requires_grad) for k, p in net.named_parameters()}
    ctx = RunContext(batch_size=11)
    fast = rf_erf.erf_map(net, x, (2, 3), "replknet", ctx)[0]
    ref = _loop(net, x)
    assert ref.max() > 0 and np.allclose(fast, ref, rtol=1e-9, atol=1e-12)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert {k: (id(p), p.requires_grad) for k, p in net.named_parameters()} == params
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2  # folding worked on a copy
    folded = rf_erf._folded(net)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == 0
    view = rf_erf.input_only(net, nhwc=True)
    assert not any(p.requires_grad for p in view.parameters())
    assert view.c1.weight.is_contiguous(memory_format=torch.channels_last)
    assert view.c1.weight.data_ptr() != net.c1.weight.data_ptr()  # a channels-last copy, not the caller's
    assert rf_erf.input_only(net, nhwc=False).c1.weight.data_ptr() == net.c1.weight.data_ptr()  # shared


def test_a_forward_that_rejects_channels_last_falls_back_and_float32_stays_close():
    net = _net(view=True, dtype=torch.float32)
    x = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():  # the layout really is rejected by this forward
        try:
            net(x.contiguous(memory_format=torch.channels_last))
            rejected = False
        except RuntimeError:
            rejected = True
    assert rejected
    fast = rf_erf.erf_map(net, x, (2, 3), "replknet", RunContext(batch_size=6))[0]
    ref = _loop(net, x)
    assert np.allclose(fast, ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_the_chunk_search_keeps_doubling_through_noise_and_stops_when_clearly_slower():
    timings: dict = {}
    assert rf_erf._next_chunk(timings, 1, 1.0, 16, first=False) == 2
    assert rf_erf._next_chunk(timings, 2, 2.04, 16, first=False) == 4  # 1.02 s per image: within 3 %, go on
    assert rf_erf._next_chunk(timings, 4, 3.2, 16, first=False) == 8  # 0.8: faster
    assert rf_erf._next_chunk(timings, 8, 7.2, 16, first=False) == 4  # 0.9: 12 % slower than 0.8, back to 4
