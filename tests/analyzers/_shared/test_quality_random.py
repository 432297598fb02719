"""eMPRT and the random-logit test of the quality panel (analyzers/_shared/quality_random.py): equal to Quantus
0.6.0 on a small model (given the same randomized model and the same other class), and the checks fail where a
method ignores the model (eMPRT) or the class (random logit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analyzers._shared import quality_random as qr
from analyzers._shared.quality_panel import quality_panel
from analyzers._shared.randomization import randomized_copy


class Net(nn.Module):
    """(N, 1, 8, 8) -> (N, 3); "trained" by planting: every class reads only the top-left 3x3 patch, so its
    input gradient is zero elsewhere (a structured, low-entropy map) until the layers are re-drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Linear(128, 3)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


def net() -> Net:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = Net()
    with torch.no_grad():
        w = m.fc.weight.view(3, 2, 8, 8)
        keep = torch.zeros(8, 8, dtype=torch.bool)
        keep[:2, :2] = True  # conv padding 1: the gradient reaches the 3x3 patch
        w.mul_(keep)
        m.conv.bias.fill_(0.5)
    return m.eval()


def gradient(module, x, target):
    """Signed input gradient of the target logit, summed over channels: (N, H, W)."""
    x = torch.as_tensor(x).clone().requires_grad_(True)
    out = module(x)
    t = torch.as_tensor(target).long().reshape(-1, 1)
    (g,) = torch.autograd.grad(out.gather(1, t).sum(), x)
    return g.sum(1).detach()


def inputs(n=4) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1)) + 0.1


# ---- the pieces against Quantus -------------------------------------------------------------------------

def test_discrete_entropy_equals_quantus_and_guards_constant_and_nan_maps():
    from quantus.functions.complexity_func import discrete_entropy

    a = np.random.default_rng(0).normal(size=(5, 1, 7, 9))
    a[1] = np.where(a[1] > 1, a[1], 0.0)  # mostly one value: low entropy
    want = [discrete_entropy(a=row, x=row, n_bins=100) for row in a]
    assert np.allclose(qr.discrete_entropy(a), want, atol=1e-12)
    const, nan = np.ones((1, 4, 4)), np.full((1, 4, 4), np.nan)
    assert qr.discrete_entropy(const)[0] == 0.0 and qr.discrete_entropy(nan)[0] == 0.0
    part = a[:1].copy()
    part[0, 0, 0, 0] = np.inf
    assert np.isfinite(qr.discrete_entropy(part)[0])


@pytest.mark.parametrize("n", [3, 6, 7, 64, 301])
def test_ssim_equals_scikit_image(n):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(n)
    a, b = rng.normal(size=(3, n)), rng.normal(size=(3, n))
    b[1] = 0.8 * a[1] + 0.2 * b[1]  # alike
    for i in range(3):
        p, q = a[i] / np.abs(a[i]).max(), b[i] / np.abs(b[i]).max()
        both = np.concatenate([p, q])
        win = min(7, n if n % 2 else n - 1)
        want = structural_similarity(p, q, win_size=win, data_range=float(both.max() - both.min()))
        assert abs(qr.ssim_flat(a, b)[i] - want) < 1e-12
    assert np.allclose(qr.ssim_flat(a, a), 1.0) and qr.ssim_flat(np.ones((1, 5)), np.ones((1, 5)))[0] == 1.0
    assert qr.ssim_flat(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))[0] == 0.0  # no window fits
    assert np.isfinite(qr.ssim_flat(np.full((1, n), np.nan), a[:1])).all()


def test_emprt_equals_quantus_given_the_same_randomized_model(monkeypatch):
    quantus = pytest.importorskip("quantus")
    from quantus.helpers.model.pytorch_model import PyTorchModel

    model, x = net(), inputs()
    with torch.no_grad():
        y = model(x).argmax(1)
    rnd = randomized_copy(model, -1, seed=0).module

    def generator(self, order="top_down", seed=42):  # Quantus' loop, with our fully randomized copy at its end
        for k in range(self.random_layer_generator_length):
            yield f"layer{k}", rnd

    monkeypatch.setattr(PyTorchModel, "get_random_layer_generator", generator)
    explain_func = lambda model, inputs, targets, **kw: gradient(model, inputs, targets).numpy()  # noqa: E731
    metric = quantus.EfficientMPRT(disable_warnings=True, display_progressbar=False)
    want = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None, explain_func=explain_func,
                  device="cpu", batch_size=2)
    f = qr.randomization_findings({"grad": gradient}, model, x, {"grad": gradient(model, x, y)}, y, seed=0,
                                  tests=("emprt",))
    assert np.allclose(f.arrays["quality_emprt_grad"], want, atol=1e-9)
    assert f.arrays["quality_emprt_defined_grad"].all()
    assert {c.name: c for c in f.checks}["quality_emprt_grad"].passed  # the planted structure is lost
    assert "quality_logit_ssim_grad" not in f.arrays


def quantus_off_class(y: int, n_classes: int, seed: int) -> int:
    """Quantus RandomLogit's draw for a batch of one sample."""
    np.random.seed(seed)
    k = np.random.randint(0, n_classes - 1, 1)[0]
    return [c for c in range(n_classes) if c != y][k]


def test_random_logit_ssim_equals_quantus():
    quantus = pytest.importorskip("quantus")
    model, x = net(), inputs()
    with torch.no_grad():
        y = model(x).argmax(1)
    explain_func = lambda model, inputs, targets, **kw: gradient(model, inputs, targets).numpy()  # noqa: E731
    for i in range(len(x)):
        xi, yi = x[i:i + 1], y[i:i + 1]
        metric = quantus.RandomLogit(num_classes=3, seed=42, disable_warnings=True)
        want = metric(model=model, x_batch=xi.numpy(), y_batch=yi.numpy(), a_batch=None, explain_func=explain_func,
                      device="cpu")
        other = torch.tensor([quantus_off_class(int(yi), 3, 42)])
        got = qr.ssim_flat(gradient(model, xi, yi), gradient(model, xi, other))
        assert abs(got[0] - want[0]) < 1e-6  # Quantus normalizes in float32


def test_other_classes_never_pick_the_target_and_cover_the_rest():
    t = np.arange(600) % 4
    o = qr.other_classes(t, 4, seed=3)
    assert not np.any(o == t) and set(o.tolist()) == {0, 1, 2, 3}
    for k in range(4):
        assert set(o[t == k].tolist()) == {0, 1, 2, 3} - {k}
    assert np.array_equal(o, qr.other_classes(t, 4, seed=3))


# ---- the checks catch a wrong method ------------------------------------------------------------------

def test_a_class_blind_map_fails_random_logit_and_a_model_blind_map_fails_emprt():
    model, x = net(), inputs()
    with torch.no_grad():
        y = model(x).argmax(1)
    methods = {"grad": gradient, "input": lambda m, xs, t: xs.sum(1).detach()}  # |input| ignores model and class
    maps = {k: fn(model, x, y) for k, fn in methods.items()}
    f = qr.randomization_findings(methods, model, x, maps, y, seed=0)
    checks = {c.name: c for c in f.checks}
    assert checks["quality_emprt_grad"].passed and checks["quality_random_logit_grad"].passed
    assert not checks["quality_emprt_input"].passed and checks["quality_emprt_input"].value == 0.0
    assert not checks["quality_random_logit_input"].passed and checks["quality_random_logit_input"].value == 1.0
    assert f.metrics["quality_logit_rank_corr_input"] == 1.0 > f.metrics["quality_logit_rank_corr_grad"]
    assert not np.any(f.arrays["quality_logit_other"] == y.numpy())
    assert all(v == 0.0 for k, v in f.metrics.items() if k.startswith("quality_nonfinite_"))


def test_emprt_explains_a_fully_randomized_copy_that_keeps_batchnorm_statistics():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(128, 3))
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].weight.uniform_(0.5, 2)  # "trained" affine pair, away from its initial (1, 0)
        model[1].bias.uniform_(-1, 1)
    model.eval()
    seen = []

    def explain(m, xs, t):
        seen.append(m)
        return gradient(m, xs, t)

    x, y = inputs(2), torch.tensor([0, 1])
    qr.randomization_findings({"grad": explain}, model, x, {"grad": gradient(model, x, y)}, y, tests=("emprt",))
    (rnd,) = seen
    assert rnd is not model
    for (name, p), q in zip(model.named_parameters(), rnd.parameters(), strict=True):
        assert not torch.equal(p, q), name  # every layer re-drawn (BatchNorm's affine pair included)
    assert torch.equal(rnd[1].running_mean, model[1].running_mean)  # the documented policy: statistics kept
    assert torch.equal(rnd[1].running_var, model[1].running_var)


def test_constant_and_nan_maps_are_guarded():
    model, x = net(), inputs(3)
    y = torch.zeros(3, dtype=torch.long)
    methods = {"flat": lambda m, xs, t: torch.ones(len(xs), 8, 8),
               "nan": lambda m, xs, t: torch.full((len(xs), 8, 8), float("nan"))}
    f = qr.randomization_findings(methods, model, x, {k: fn(model, x, y) for k, fn in methods.items()}, y)
    checks = {c.name: c for c in f.checks}
    assert not f.arrays["quality_emprt_defined_flat"].any() and np.isfinite(f.arrays["quality_emprt_flat"]).all()
    assert not checks["quality_emprt_flat"].passed and checks["quality_emprt_flat"].value is None
    assert f.metrics["quality_nonfinite_nan"] == 3 * 3 * 64 and f.metrics["quality_nonfinite_flat"] == 0
    assert all(np.isfinite(a).all() for a in f.arrays.values() if a.dtype.kind == "f")


def test_the_panel_adds_them_only_on_request_and_leaves_the_model_alone():
    model, x = net(), inputs(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        y = model(x).argmax(1)
    maps = {"grad": gradient(model, x, y)}
    plain = quality_panel(model, x, maps, y, step=0.25)
    assert not any(k.startswith(("quality_emprt", "quality_logit")) for k in plain.metrics)
    full = quality_panel(model, x, maps, y, step=0.25, explain={"grad": gradient})
    names = {c.name for c in full.checks}
    assert {"quality_beats_random_grad", "quality_emprt_grad", "quality_random_logit_grad"} <= names
    only = quality_panel(model, x, maps, y, step=0.25, explain={"grad": gradient}, randomization=("emprt",))
    assert "quality_random_logit_grad" not in {c.name for c in only.checks}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(TypeError):
        quality_panel(lambda z: model(z), x, maps, y, step=0.25, explain={"grad": gradient})
