"""The shared randomization control (Adebayo et al.) and rank correlation: the copy differs from the
original in exactly the chosen layers, the original is untouched, the seed policy is reproducible and
nested, BatchNorm keeps its running statistics, and the global RNG is left alone."""

import numpy as np
import pytest
import torch
from torch import nn

from analyzers._shared.randomization import SEED_OFFSET, draw_seed, parameterized_layers, randomized_copy
from analyzers._shared.stats import mean_spearman_abs, spearman_abs


def _net() -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():  # "trained" BatchNorm: affine and statistics away from their initial values
        net[1].weight.uniform_(0.5, 2.0)
        net[1].bias.uniform_(-1.0, 1.0)
        net[1].running_mean.uniform_(-1.0, 1.0)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _changed(a: nn.Module, b: nn.Module) -> set[str]:
    """Module names whose own parameters differ between a and b."""
    pb = dict(b.named_parameters())
    return {n.rpartition(".")[0] for n, p in a.named_parameters() if not torch.equal(p, pb[n])}


def test_layers_are_counted_from_the_output():
    assert parameterized_layers(_net()) == ["7", "3", "1", "0"]


@pytest.mark.parametrize("n_top, expected", [(0, set()), (1, {"7"}), (2, {"7", "3"}), (3, {"7", "3", "1"}),
                                             (-1, {"7", "3", "1", "0"}), (99, {"7", "3", "1", "0"})])
def test_copy_differs_in_exactly_the_chosen_layers_and_the_original_is_untouched(n_top, expected):
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rnd = randomized_copy(net, n_top, seed=0)
    assert _changed(net, rnd.module) == expected
    assert set(rnd.layers) == expected and rnd.n_layers == len(expected)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert rnd.module is not net and not rnd.module.training


def test_batchnorm_affine_is_reinitialized_and_running_statistics_are_kept():
    net = _net()
    bn = randomized_copy(net, 3, seed=0).module[1]
    assert torch.equal(bn.weight, torch.ones(4)) and torch.equal(bn.bias, torch.zeros(4))
    assert torch.equal(bn.running_mean, net[1].running_mean) and torch.equal(bn.running_var, net[1].running_var)


def test_same_seed_same_copy_other_seed_or_draw_other_copy():
    net = _net()
    a, b = randomized_copy(net, -1, seed=5), randomized_copy(net, -1, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.module.parameters(), b.module.parameters(), strict=True))
    assert a.seed == draw_seed(5) == 5 + SEED_OFFSET
    for other in (randomized_copy(net, -1, seed=6), randomized_copy(net, -1, seed=5, draw=1)):
        assert not torch.equal(a.module[7].weight, other.module[7].weight)


def test_the_cascade_is_nested_and_independent_of_dtype():
    net = _net()
    one, two = randomized_copy(net, 1, seed=0), randomized_copy(net, 2, seed=0)
    assert torch.equal(one.module[7].weight, two.module[7].weight)  # the top layer is drawn first
    wide = randomized_copy(_net().double(), 2, seed=0)  # a float64 run draws the same values
    assert torch.equal(wide.module[3].weight, two.module[3].weight.double())


def test_the_global_rng_is_left_alone():
    net = _net()  # built first: it seeds the global generator itself
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    randomized_copy(net, -1, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_spearman_of_absolute_values():
    a = np.arange(10.0)
    assert spearman_abs(a, -a) == pytest.approx(1.0)  # |.|: the sign is not a rank change
    assert spearman_abs(a, a[::-1]) == pytest.approx(-1.0)
    assert spearman_abs(a, np.ones(10)) == 0.0  # a constant map has no order: counted as 0, not NaN
    maps = np.stack([a, a[::-1]])
    assert mean_spearman_abs(maps, np.stack([a, a])) == pytest.approx(0.0)
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 50))
    assert spearman_abs(x, y) == pytest.approx(spearmanr(np.abs(x), np.abs(y)).statistic)


def test_spearman_equals_scipy_with_and_without_ties():
    from scipy.stats import spearmanr

    from analyzers._shared.stats import spearman

    rng = np.random.default_rng(3)
    for x, y in [(rng.standard_normal(500), rng.standard_normal(500)),
                 (rng.integers(0, 5, 400).astype(float), rng.integers(0, 3, 400).astype(float)),  # heavy ties
                 (np.arange(50.0), np.arange(50.0) ** 3)]:
        assert abs(spearman(x, y) - spearmanr(x, y).statistic) < 1e-12
