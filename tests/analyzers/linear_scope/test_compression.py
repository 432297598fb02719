"""Rows of A by Jacobian compression (rows with disjoint input fields share one backward pass) must equal a
literal float64 loop of single backward passes; the field (``replay.footprint``) must contain every row's
numerical support and agree with the RF analyzer's box; a field one pixel too small must be caught."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analyzers.linear_scope.footprint import field
from analyzers.linear_scope.products import Products, measured_chunks, pack
from analyzers.linear_scope.replay import trace
from models.architectures import DenoiseCNN, SRCNNx2

F64 = torch.float64


class FCN5(nn.Module):
    """Five conv layers with ReLU, a max-pool, a strided conv, eval-BN, a skip (and a bilinear tail for UpFCN)."""

    up = False

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=2, dilation=2)
        self.bn = nn.BatchNorm2d(6)
        self.c3 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.c4 = nn.Conv2d(8, 8, 1)
        self.c5 = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        h = F.relu(self.c1(x))
        h = F.max_pool2d(F.relu(self.bn(self.c2(h))) + h, 3, stride=1, padding=1)
        h = F.relu(self.c3(h))
        h = F.leaky_relu(self.c4(h), 0.1) + h
        h = self.c5(h)
        return F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False) if self.up else h


class UpFCN(FCN5):
    up = True


def _seeded(cls):
    torch.manual_seed(0)
    m = cls().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.to(F64)


def _x(shape, seed=1):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(F64)


def _loop(module, x, index) -> torch.Tensor:
    """The literal reference: one float64 backward of the real network per row (A = Jacobian here)."""
    xr = x.clone().requires_grad_(True)
    y = module(xr).reshape(-1)
    return torch.stack([torch.autograd.grad(y[j], xr, retain_graph=True)[0][0] for j in index])


def _rows_against_loop(module, x, n_rows, seed=0):
    replay = trace(module, x)
    prod = Products(replay)
    index = torch.randperm(prod.n_out, generator=torch.Generator().manual_seed(seed))[:n_rows]
    return replay, prod, index, prod.rows(index), _loop(module, x, index.tolist())


def _groups(replay, index) -> int:
    sp = replay.out_shape[1:]
    pos = [tuple(int(v) for v in np.unravel_index(j % int(np.prod(sp)), sp)) for j in index.tolist()]
    return len(pack([field(replay.footprint, p, replay.in_shape[1:]) for p in pos], replay.in_shape[1:]))


def test_compressed_rows_equal_a_float64_loop_on_a_5_layer_fcn():
    replay, _, index, rows, ref = _rows_against_loop(_seeded(FCN5), _x((1, 2, 48, 48)), 200)
    assert replay.footprint is not None
    assert _groups(replay, index) < len(index) // 4  # rows really were shared
    assert float((rows - ref).abs().max()) <= 1e-12 * float(ref.abs().max())


def test_compressed_rows_and_pixel_rows_equal_the_loop_on_sr_cnn():
    module, x = _seeded(SRCNNx2), _x((1, 1, 32, 32))
    replay, prod, index, rows, ref = _rows_against_loop(module, x, 256)
    assert _groups(replay, index) < len(index) // 4
    assert float((rows - ref).abs().max()) <= 1e-12 * float(ref.abs().max())
    pixels = [(r, c) for r in range(0, 64, 5) for c in range(0, 64, 7)]
    flat = [r * 64 + c for r, c in pixels]
    assert torch.allclose(prod.pixel_rows(pixels), _loop(module, x, flat), rtol=0, atol=1e-12)


def test_every_row_is_zero_outside_its_field_and_the_field_is_the_rf_analyzers_box():
    from analyzers.receptive_field.graph import analyze

    cases = ((DenoiseCNN, (1, 1, 12, 12)), (FCN5, (1, 2, 12, 12)), (UpFCN, (1, 2, 8, 8)), (SRCNNx2, (1, 1, 10, 10)))
    for cls, shape in cases:
        module, x = _seeded(cls), _x(shape)
        replay = trace(module, x)
        prod = Products(replay)
        every = torch.arange(prod.n_out)
        rows = prod.rows(every)
        assert torch.allclose(rows, _loop(module, x, every.tolist()), rtol=0, atol=1e-12)
        sp = replay.out_shape[1:]
        for j in range(prod.n_out):
            cut = field(replay.footprint, np.unravel_index(j % int(np.prod(sp)), sp), replay.in_shape[1:])
            outside = rows[j].clone()
            outside[(slice(None), *cut)] = 0
            assert float(outside.abs().max()) == 0.0, (cls.__name__, j)
        box = analyze(module, tuple(shape[1:])).find("output").box
        if not box.approx:  # the recurrence is the same: the same field size per axis
            assert [float(hi - lo + 1) for _, lo, hi in replay.footprint] == list(box.r)
    assert trace(_seeded(DenoiseCNN), _x((1, 1, 8, 8))).footprint == [(Fraction(1), Fraction(-4), Fraction(4))] * 2


def test_a_field_one_pixel_too_small_gives_wrong_rows():
    """The equality above has teeth: shrink the field by one pixel and the shared rows come out wrong."""
    module, x = _seeded(DenoiseCNN), _x((1, 1, 16, 16))
    replay = trace(module, x)
    index = torch.arange(0, 256, 3)
    ref = _loop(module, x, index.tolist())
    small = [(j, lo + 1, hi) for j, lo, hi in replay.footprint]
    wrong = Products(dataclasses.replace(replay, footprint=small)).rows(index)
    assert float((wrong - ref).abs().max()) > 1e-3 * float(ref.abs().max())


def test_non_local_nets_have_no_footprint_and_still_give_the_loops_rows():
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 3, 3, padding=1), nn.Linear(3 * 6 * 6, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    module, x = _seeded(Head), _x((1, 1, 6, 6))
    replay, _, index, rows, ref = _rows_against_loop(module, x, 5)
    assert replay.footprint is None
    assert torch.allclose(rows, ref, rtol=0, atol=1e-12)
    assert trace(_seeded(DenoiseCNN), _x((1, 1, 8, 8)), freeze=False).footprint is None


def test_measured_chunks_give_the_same_result_as_one_at_a_time():
    u = torch.randn(37, 5, dtype=F64)
    sizes: list[int] = []

    def run(part):
        sizes.append(len(part))
        return part * 2 + part.sum(1, keepdim=True)

    out = measured_chunks(u, run, cap=8, device="cpu")
    assert torch.equal(out, torch.cat([run(u[i:i + 1]) for i in range(len(u))]))
    assert max(sizes) <= 8 and sum(sizes[:-37]) == 37
