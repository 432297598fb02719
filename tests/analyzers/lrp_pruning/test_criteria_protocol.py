"""Pruning-by-explaining protocol, tested against literal references: the criterion under every
normalization setting (a float64 hand-written LRP-epsilon / gradient on a tiny MLP), FLOPs against a
hand count, latency as the minimum of repeated timings (scripted clock), and the random baseline drawn
in every figure of a result (issue 17)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from analyzers.lrp_pruning import structure
from analyzers.lrp_pruning.analyzer import plan_series
from analyzers.lrp_pruning.criteria import NORMALIZATIONS, Scoring, unit_scores
from analyzers.lrp_pruning.result import LRPPruningResult
from analyzers.lrp_pruning.structure import count_flops, find_prunable, latency_ms, remove_units

EPS = 1e-6  # the composite's epsilon (make_composite's default)


def _mlp() -> nn.Sequential:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    return net.double().eval()


def _literal_lrp(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[np.ndarray]:
    """LRP-epsilon written out in float64 numpy: R_i = a_i sum_j w_ji R_j / (z_j + eps sign(z_j)),
    starting from the true-class logit; the per-unit score is sum over samples of |R| at each hidden
    Linear's output (ReLU passes relevance through)."""
    w = [m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    b = [m.bias.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    a0 = x.numpy()
    h1 = np.maximum(a0 @ w[0].T + b[0], 0)
    h2 = np.maximum(h1 @ w[1].T + b[1], 0)
    out = h2 @ w[2].T + b[2]
    rel = np.zeros_like(out)
    rel[np.arange(len(y)), y.numpy()] = out[np.arange(len(y)), y.numpy()]

    def back(a, wt, bias, r):
        z = a @ wt.T + bias
        z = z + EPS * np.where(z >= 0, 1.0, -1.0)
        return a * ((r / z) @ wt)

    r2 = back(h2, w[2], b[2], rel)  # relevance at the second hidden layer's output
    r1 = back(h1, w[1], b[1], r2)   # ... and at the first's
    return [np.abs(r1).sum(0), np.abs(r2).sum(0)]


def _literal_gradient(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[np.ndarray]:
    """|sum over samples of d(mean cross-entropy)/d(hidden pre-activation)|, by hand in float64."""
    w = [m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    b = [m.bias.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    z1 = x.numpy() @ w[0].T + b[0]
    z2 = np.maximum(z1, 0) @ w[1].T + b[1]
    out = np.maximum(z2, 0) @ w[2].T + b[2]
    p = np.exp(out - out.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g_out = (p - np.eye(out.shape[1])[y.numpy()]) / len(y)
    g2 = (g_out @ w[2]) * (z2 > 0)
    g1 = (g2 @ w[1]) * (z1 > 0)
    return [np.abs(g1.sum(0)), np.abs(g2.sum(0))]


def _literal_normalized(raw: list[np.ndarray], criterion: str, normalize: str) -> list[np.ndarray]:
    """The documented settings, spelled out: per_layer = LRP/weight by layer L1, gradient/Taylor by layer
    L2; image = LRP raw, baselines as per_layer; none = raw."""
    if normalize == "none" or (normalize == "image" and criterion == "lrp"):
        return raw
    if criterion in ("lrp", "weight"):
        return [s / np.abs(s).sum() for s in raw]
    return [s / np.sqrt((s ** 2).sum()) for s in raw]


@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_criterion_under_each_normalization_equals_a_literal_float64_reimplementation(normalize):
    net = _mlp()
    layers = find_prunable(net, torch.zeros(1, 3, dtype=torch.float64), "linear")
    assert [ly.producer for ly in layers] == ["0", "2"]
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, dtype=torch.float64, generator=gen), torch.arange(12) % 3
    scoring = Scoring("epsilon_plus_flat", (x.amin(0, keepdim=True), x.amax(0, keepdim=True)), normalize)
    weights = [net[0].weight.detach().abs().sum(1).numpy(), net[2].weight.detach().abs().sum(1).numpy()]
    for crit, raw in (("lrp", _literal_lrp(net, x, y)), ("gradient", _literal_gradient(net, x, y)),
                      ("weight", weights)):
        got = unit_scores(crit, net, layers, x, y, scoring)
        want = _literal_normalized(raw, crit, normalize)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-6, atol=1e-12, err_msg=f"{crit} / {normalize}")


def test_image_setting_changes_only_lrp_and_reorders_layers():
    """Per-layer L1 makes each layer's LRP scores sum to 1; the image setting leaves them raw, so a layer
    with more total relevance is pruned less: the global order differs, the baselines do not."""
    net = _mlp()
    layers = find_prunable(net, torch.zeros(1, 3, dtype=torch.float64), "linear")
    x, y = torch.randn(12, 3, dtype=torch.float64), torch.arange(12) % 3
    bounds = (x.amin(0, keepdim=True), x.amax(0, keepdim=True))
    per_layer, image = (unit_scores("lrp", net, layers, x, y, Scoring("epsilon_plus_flat", bounds, n))
                        for n in ("per_layer", "image"))
    assert all(float(s.sum()) == pytest.approx(1.0) for s in per_layer)
    assert not all(float(s.sum()) == pytest.approx(1.0) for s in image)
    for crit in ("gradient", "weight", "random"):
        a, b = (unit_scores(crit, net, layers, x, y, Scoring("epsilon_plus_flat", bounds, n,
                                                             torch.Generator().manual_seed(1)))
                for n in ("per_layer", "image"))
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True)), crit
    assert [k for k, _, _ in plan_series(["lrp", "weight"], ["per_layer", "image"])] == \
        ["lrp", "weight", "random", "lrp_image"]
    assert [k for k, _, _ in plan_series(["random"], ["per_layer", "none"])] == ["random"]


def test_flops_equal_a_hand_count_before_and_after_pruning():
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(3 * 2 * 2, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x = torch.zeros(1, 2, 5, 5)
    # conv: 3 x 5 x 5 outputs, each 2 x 3 x 3 multiply-adds; linears 12 x 4 and 4 x 2; FLOPs = 2 x MACs
    assert count_flops(net, x) == 2 * (3 * 25 * 2 * 9 + 12 * 4 + 4 * 2)
    layer = find_prunable(net, x, "conv")[0]
    remove_units(net, layer, torch.tensor([0, 2]))
    assert count_flops(net, x) == 2 * (2 * 25 * 2 * 9 + 8 * 4 + 4 * 2)


def test_latency_is_the_minimum_of_repeated_timings(monkeypatch):
    durations = [0.009, 0.004, 0.012, 0.0021, 0.007] * 4  # seconds, noisy; 20 timed passes
    ticks = itertools.accumulate(itertools.chain.from_iterable((d, 0.05) for d in durations), initial=1.0)
    calls = []

    def clock():
        calls.append(1)
        return next(ticks)

    monkeypatch.setattr(structure, "_clock", clock)
    passes = []
    model = nn.Linear(3, 2)
    model.register_forward_hook(lambda m, a, o: passes.append(torch.is_inference_mode_enabled()))
    ms = latency_ms(model, torch.zeros(8, 3), repeats=20, warmup=3)
    assert ms == pytest.approx(1000 * min(durations))
    assert len(calls) == 2 * 20  # warm-up passes are not timed
    assert len(passes) == 23 and all(passes)


@pytest.mark.zoo("toy_mlp.moons")
def test_random_baseline_in_every_figure_and_the_summary_says_when_it_ties(tmp_path):
    from workbench.runtime import RunSpec, run

    r = run(RunSpec("lrp_pruning", "toy_mlp.moons", None, {"criteria": "lrp,weight", "rates": "20,40",
                                                           "reference_per_class": "5"}, device="cpu"))
    assert r.criteria == ["lrp", "weight", "random", "lrp_image"]  # random added although not asked
    assert r.info["series"]["lrp_image"] == ["lrp", "image"] and r.info["normalize"] == ["per_layer", "image"]
    plots = [f for f in r.figures() if not any(t.type == "table" for t in f.data)]
    assert len(plots) == 3
    for fig in plots:
        assert any(str(t.name).startswith("random") for t in fig.data), fig.layout.title.text
    assert r.metrics["latency_batch"] == 32 and r.metrics["flops_after"] < r.metrics["flops_before"]
    ties = r.random_ties("lrp")
    assert ties == [20.0, 40.0], r.arrays["acc"]  # 3000 hidden units: any 40% can go on this toy
    assert "Random pruning matches LRP (within one point) at every rate tried" in r.summary()
    loaded = LRPPruningResult.load(r.save(tmp_path / "r"))
    assert loaded.random_ties("lrp") == ties and loaded.summary() == r.summary()
