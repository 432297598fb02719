"""LRP reference tests that catch a wrong rule: the analyzer's relevance against (1) a literal hand-written
LRP in float64 numpy (every conv written out as a dense matrix by plain loops, every rule as its formula;
no zennit) on a 3-layer conv/conv/linear net, for every composite the analyzer offers, and (2) a direct
zennit run of the same composite on small nets (plain, BatchNorm + pooling, a torchvision ResNet).

The ``check_*`` functions raise AssertionError on a mismatch; the tests call them, and
tests/reliability/test_mutations.py calls them again with a wrong rule planted in the analyzer (they must
fail then). The file is named test_lrp_reference.py, not test_reference.py: the test folders have no
``__init__.py``, so two files of one basename would clash under pytest's default import mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

EPS, STAB, GAMMA = 0.5, 1e-9, 0.25  # a large epsilon: LRP-0 must differ from LRP-epsilon by much more than rtol
RTOL = 1e-9
LOW, HIGH = -1.5, 2.0  # the z^B input domain handed to the analyzer and to the references


class Net3(nn.Module):
    """(N, 2, 6, 6) -> (N, 3): conv 2->3 (3x3, pad 1), ReLU, conv 3->4 (3x3, stride 2, pad 1), ReLU, linear 36->3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(2, 3, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU()
        self.flat, self.fc = nn.Flatten(), nn.Linear(36, 3)

    def forward(self, x):
        return self.fc(self.flat(self.relu2(self.conv2(self.relu1(self.conv1(x))))))


def net3() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        m = Net3().double().eval()
        for p in m.parameters():  # biases of both signs and weights of order one: every rule term matters
            p.data.normal_(0.0, 0.6)
    return m


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(3, 2, 6, 6, generator=g, dtype=torch.float64) * (HIGH - LOW) + LOW) * 0.9
    return x, torch.tensor([0, 1, 2])


# ---- the literal reference --------------------------------------------------------------------

def conv_matrix(conv: nn.Conv2d, in_shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A conv as a dense (out, in) matrix, its bias per output and its 0/1 connection mask, by loops."""
    w = conv.weight.detach().numpy()
    cout, cin, k, _ = w.shape
    (s, _), (p, _) = conv.stride, conv.padding
    c_in, h, wd = in_shape
    ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    mat, mask = np.zeros((cout * ho * wo, c_in * h * wd)), np.zeros((cout * ho * wo, c_in * h * wd))
    for o in range(cout):
        for i in range(ho):
            for j in range(wo):
                row = (o * ho + i) * wo + j
                for c in range(cin):
                    for di in range(k):
                        for dj in range(k):
                            y, xx = i * s - p + di, j * s - p + dj
                            if 0 <= y < h and 0 <= xx < wd:
                                col = (c * h + y) * wd + xx
                                mat[row, col], mask[row, col] = w[o, c, di, dj], 1.0
    return mat, np.repeat(conv.bias.detach().numpy(), ho * wo), mask


def stab(z: np.ndarray, e: float) -> np.ndarray:
    """zennit's stabilizer: z + e * sign(z), with sign(0) = +1."""
    return z + np.where(z == 0, 1.0, np.sign(z)) * e


def _pos(a):
    return np.clip(a, 0, None)


def _neg(a):
    return np.clip(a, None, 0)


def r_epsilon(a, w, b, m, r, eps=EPS):
    return a * (w.T @ (r / stab(w @ a + b, eps)))


def r_zplus(a, w, b, m, r):
    wp, wn = _pos(w), _neg(w)
    s = r / stab(wp @ _pos(a) + wn @ _neg(a) + _pos(b), STAB)
    return _pos(a) * (wp.T @ s) + _neg(a) * (wn.T @ s)


def r_alphabeta(a, w, b, m, r, alpha=2.0, beta=1.0, bias=True):
    wp, wn, ap, an = _pos(w), _neg(w), _pos(a), _neg(a)
    bp, bn = (_pos(b), _neg(b)) if bias else (0.0, 0.0)
    sp, sn = r / stab(wp @ ap + wn @ an + bp, STAB), r / stab(wn @ ap + wp @ an + bn, STAB)
    return alpha * (ap * (wp.T @ sp) + an * (wn.T @ sp)) - beta * (ap * (wn.T @ sn) + an * (wp.T @ sn))


def r_flat(a, w, b, m, r):
    return m.T @ (r / stab(m.sum(1), STAB))


def r_zbox(a, w, b, m, r):
    lo, hi = np.full_like(a, LOW), np.full_like(a, HIGH)
    s = r / stab(w @ a - _pos(w) @ lo - _neg(w) @ hi, STAB)
    return a * (w.T @ s) - lo * (_pos(w).T @ s) - hi * (_neg(w).T @ s)


def r_gamma(a, w, b, m, r):
    """zennit's generalized gamma: positive outputs share among (w + g w+) x+ and (w + g w-) x-, negative ones
    among (w + g w-) x+ and (w + g w+) x-; biases only in the x+ terms."""
    wgp, wgn, ap, an = w + GAMMA * _pos(w), w + GAMMA * _neg(w), _pos(a), _neg(a)
    z = w @ a + b
    sp = (z > 0) * r / stab(wgp @ ap + (b + GAMMA * _pos(b)) + wgn @ an, STAB)
    sn = (z < 0) * r / stab(wgn @ ap + (b + GAMMA * _neg(b)) + wgp @ an, STAB)
    return ap * (wgp.T @ sp) + an * (wgn.T @ sp) + ap * (wgn.T @ sn) + an * (wgp.T @ sn)


def r_alpha1beta0_nobias(a, w, b, m, r):
    return r_alphabeta(a, w, b, m, r, 1.0, 0.0, bias=False)


#: composite -> the rule of (conv1, conv2, fc), as the analyzer documents them
TABLE = {"epsilon_plus_flat": (r_flat, r_zplus, r_epsilon),
         "epsilon_gamma_box": (r_zbox, r_gamma, r_epsilon),
         "epsilon_alpha2_beta1": (r_alphabeta, r_alphabeta, r_epsilon),
         "paper": (r_zbox, r_alpha1beta0_nobias, r_epsilon)}


def literal_lrp(model: Net3, x: torch.Tensor, target: torch.Tensor, rules: tuple) -> np.ndarray:
    """(N, 2, 6, 6) float64 input relevance; the initial relevance is the target logit."""
    w1, b1, m1 = conv_matrix(model.conv1, (2, 6, 6))
    w2, b2, m2 = conv_matrix(model.conv2, (3, 6, 6))
    w3, b3 = model.fc.weight.detach().numpy(), model.fc.bias.detach().numpy()
    out = []
    for xi, t in zip(x.numpy(), target.tolist(), strict=True):
        a0 = xi.reshape(-1)
        a1 = np.maximum(w1 @ a0 + b1, 0)
        a2 = np.maximum(w2 @ a1 + b2, 0)
        logits = w3 @ a2 + b3
        r3 = np.zeros(3)
        r3[t] = logits[t]
        r2 = rules[2](a2, w3, b3, np.ones_like(w3), r3)  # ReLU: Pass (relevance goes through unchanged)
        r1 = rules[1](a1, w2, b2, m2, r2)
        out.append(rules[0](a0, w1, b1, m1, r1).reshape(xi.shape))
    return np.stack(out)


# ---- the analyzer's side ------------------------------------------------------------------------

def analyzer_relevance(model: nn.Module, x: torch.Tensor, target: torch.Tensor, composite: str) -> np.ndarray:
    """The input relevance the lrp analyzer computes (its own composite factory and canonization plan)."""
    from analyzers._shared.lrp import InputBounds
    from analyzers.lrp.analyzer import LRP, LRPConfig, Pass

    cfg = LRPConfig(composite=composite, epsilon=EPS, stabilizer=STAB, dtype="float64")
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
    bounds = InputBounds(torch.full(shape, LOW, dtype=x.dtype), torch.full(shape, HIGH, dtype=x.dtype), "test")
    _, exp = LRP._explain(model, Pass(x, target, bounds, cfg))
    return exp.relevance.numpy()


def zennit_relevance(model: nn.Module, x: torch.Tensor, target: torch.Tensor, composite: str,
                     canonizers: list) -> np.ndarray:
    """The same composite built straight from zennit's classes, read as the gradient at the input."""
    from zennit import composites as zc
    from zennit.rules import AlphaBeta, Epsilon, ZBox
    from zennit.types import Convolution
    from zennit.types import Linear as AnyLinear

    kw = {"epsilon": EPS, "stabilizer": STAB, "canonizers": canonizers}
    if composite == "epsilon_plus_flat":
        comp = zc.EpsilonPlusFlat(**kw)
    elif composite == "epsilon_gamma_box":
        comp = zc.EpsilonGammaBox(low=LOW, high=HIGH, gamma=GAMMA, **kw)
    elif composite == "epsilon_alpha2_beta1":
        comp = zc.EpsilonAlpha2Beta1(**kw)
    else:
        comp = zc.SpecialFirstLayerMapComposite(
            layer_map=zc.layer_map_base(STAB) + [
                (Convolution, AlphaBeta(1.0, 0.0, stabilizer=STAB, zero_params=["bias"])),
                (nn.Linear, Epsilon(epsilon=EPS))],
            first_map=[(AnyLinear, ZBox(low=LOW, high=HIGH, stabilizer=STAB))], canonizers=canonizers)
    xr = x.clone().requires_grad_(True)
    with comp.context(model) as m:
        out = m(xr)
        r0 = torch.zeros_like(out).scatter_(1, target[:, None], out.detach().gather(1, target[:, None]))
        (rel,) = torch.autograd.grad(out, xr, r0)
    return rel.detach().numpy()


def assert_close(got: np.ndarray, want: np.ndarray, what: str, rtol: float = RTOL) -> None:
    err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))
    assert err <= rtol, f"{what}: max |analyzer - reference| / max |reference| = {err:.3g} > {rtol:g}"


def check_literal(composite: str) -> None:
    """The analyzer against the literal hand-written rules of ``composite`` on Net3."""
    model, (x, t) = net3(), inputs()
    assert_close(analyzer_relevance(model, x, t, composite), literal_lrp(net3(), x, t, TABLE[composite]),
                 f"{composite} vs the literal rules")


class BNNet(nn.Module):
    """(N, 3, 12, 12) -> (N, 4): conv-BN-ReLU-maxpool, conv-BN-ReLU, avgpool, linear (biases everywhere)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.features(x))


def bn_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        m = BNNet().double().eval()
        for bn in (m.features[1], m.features[5]):
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.normal_(0, 0.3)
            bn.running_mean.data.normal_(0, 0.3)
            bn.running_var.data.uniform_(0.5, 2.0)
    return m


def tiny_resnet() -> nn.Module:
    from torchvision.models.resnet import BasicBlock, ResNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        m = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5).double().eval()
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.data.uniform_(0.5, 1.5)
                mod.running_var.data.uniform_(0.5, 2.0)
    return m


def check_zennit(composite: str, net: str) -> None:
    """The analyzer against a direct zennit run of the same composite (zennit's own canonizers)."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    g = torch.Generator().manual_seed(2)
    if net == "net3":
        build, (x, t), canon = net3, inputs(), []
    elif net == "bn_net":
        build, canon = bn_net, [SequentialMergeBatchNorm()]
        x, t = torch.rand(2, 3, 12, 12, generator=g, dtype=torch.float64) * 3 - 1.5, torch.tensor([1, 3])
    else:
        build, canon = tiny_resnet, [ResNetCanonizer()]
        x, t = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64) * 3 - 1.5, torch.tensor([0, 4])
    assert_close(analyzer_relevance(build(), x, t, composite), zennit_relevance(build(), x, t, composite, canon),
                 f"{composite} on {net} vs zennit", rtol=1e-8)


# ---- the tests ----------------------------------------------------------------------------------

COMPOSITES = tuple(TABLE)


def test_the_table_covers_every_composite_the_analyzer_offers():
    from analyzers._shared.lrp import COMPOSITES as OFFERED

    assert set(OFFERED) == set(TABLE)


def test_dense_matrices_reproduce_the_torch_forward():
    """The literal reference's conv matrices are the convs (else the rules below compare nothing)."""
    model, (x, _) = net3(), inputs()
    w1, b1, _ = conv_matrix(model.conv1, (2, 6, 6))
    w2, b2, _ = conv_matrix(model.conv2, (3, 6, 6))
    a2 = np.maximum(w2 @ np.maximum(w1 @ x[0].numpy().reshape(-1) + b1, 0) + b2, 0)
    want = model(x[:1]).detach().numpy()[0]
    assert np.allclose(model.fc.weight.detach().numpy() @ a2 + model.fc.bias.detach().numpy(), want, atol=1e-12)


@pytest.mark.parametrize("composite", COMPOSITES)
def test_analyzer_equals_the_literal_rules(composite):
    check_literal(composite)


@pytest.mark.parametrize("composite", COMPOSITES)
def test_every_layer_rule_matters_in_the_reference(composite):
    """Swapping any one layer's rule in the literal reference changes the map by far more than RTOL, so the
    comparison above can tell the rules apart on this net and input."""
    model, (x, t) = net3(), inputs()
    right = literal_lrp(model, x, t, TABLE[composite])
    others = (r_flat, r_zplus, r_epsilon, r_zbox, r_gamma, r_alphabeta, r_alpha1beta0_nobias,
              lambda a, w, b, m, r: r_epsilon(a, w, b, m, r, eps=0.0))
    for layer in range(3):
        for wrong in others:
            if wrong is TABLE[composite][layer]:
                continue
            rules = list(TABLE[composite])
            rules[layer] = wrong
            err = np.abs(literal_lrp(model, x, t, tuple(rules)) - right).max() / np.abs(right).max()
            assert err > 1e-4, (composite, layer, getattr(wrong, "__name__", "lrp0"))


@pytest.mark.parametrize("net", ["net3", "bn_net", "resnet"])
@pytest.mark.parametrize("composite", COMPOSITES)
def test_analyzer_equals_a_direct_zennit_run(composite, net):
    check_zennit(composite, net)


def test_the_drawn_map_is_the_channel_sum_of_the_relevance():
    """End to end through the runner: result.arrays['relevance'] is the literal EpsilonPlusFlat map summed over
    channels (float64 pass; the runner hands the data over in float32, so the reference takes the same values)."""
    import workbench as wb

    x, t = inputs()
    x32 = x.float()
    r = wb.run("lrp", model=net3().float(), data=x32.numpy(), classes=("a", "b", "c"), composite="epsilon_plus_flat",
               target=2, epsilon=EPS, stabilizer=STAB, dtype="float64", sanity_check=False, device="cpu")
    want = literal_lrp(net3().float().double(), x32.double(), torch.full((3,), 2), TABLE["epsilon_plus_flat"]).sum(1)
    assert_close(r.arrays["relevance"].astype(np.float64), want, "drawn map", rtol=1e-6)
