"""The quality panel's metrics against literal, slow float64 oracles (plain loops, one forward per perturbed
input), against Quantus where it is installed, and on planted models where the right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from analyzers._shared import quality as q
from analyzers._shared.quality_panel import quality_panel


def _maps(seed: int, shape=(3, 5, 6)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


# ---- oracles ----------------------------------------------------------------------------------------

def oracle_gini(v: list[float]) -> float:
    """Mean absolute difference over all pairs / (2 * mean): the textbook Gini of |v|."""
    a = [abs(x) for x in v]
    n, s = len(a), sum(a)
    return sum(abs(x - y) for x in a for y in a) / (2 * n * s)


def oracle_support(v: list[float]) -> float:
    a = [abs(x) for x in v]
    s = sum(a)
    return math.exp(-sum(x / s * math.log(x / s) for x in a if x > 0)) / len(a)


def oracle_mass(v, m) -> float:
    pos = [max(x, 0.0) for x in v]
    return sum(p for p, k in zip(pos, m, strict=True) if k) / sum(pos)


def oracle_rank(v, m) -> float:
    k = sum(m)
    top = sorted(range(len(v)), key=lambda i: -v[i])[:k]
    return sum(1 for i in top if m[i]) / k


def oracle_pointing(v, m) -> float:
    best = max(v)
    return float(any(x == best and k for x, k in zip(v, m, strict=True)))


def test_gini_and_effective_support_equal_the_oracles():
    a = _maps(0)
    a[2] = 0.0
    a[2, 1, 1] = 3.0  # one feature holds everything: Gini (n-1)/n, support 1/n
    for i in range(3):
        v = a[i].ravel().tolist()
        assert abs(q.gini(a)[i] - oracle_gini(v)) < 1e-12
        assert abs(q.effective_support(a)[i] - oracle_support(v)) < 1e-12
    assert abs(q.gini(a)[2] - 29 / 30) < 1e-12 and abs(q.effective_support(a)[2] - 1 / 30) < 1e-12
    flat = np.ones((1, 4, 4))
    assert q.gini(flat)[0] == 0.0 and abs(q.effective_support(flat)[0] - 1.0) < 1e-12


def test_localization_metrics_equal_the_oracles():
    a = _maps(1)
    rng = np.random.default_rng(2)
    mask = rng.random(a.shape) < 0.3
    for i in range(3):
        v, m = a[i].ravel().tolist(), mask[i].ravel().tolist()
        assert abs(q.relevance_mass(a, mask)[i] - oracle_mass(v, m)) < 1e-12
        assert abs(q.relevance_rank(a, mask)[i] - oracle_rank(v, m)) < 1e-12
        assert q.pointing_game(a, mask)[i] == oracle_pointing(v, m)
    inside = np.zeros_like(a, bool)
    inside[:, :2, :2] = True
    planted = np.where(inside, 1.0, 0.0) + 0.01 * np.abs(a) * inside
    assert (q.relevance_mass(planted, inside) == 1).all() and (q.pointing_game(planted, inside) == 1).all()
    assert (q.relevance_rank(planted, inside) == 1).all() and (q.pointing_game(-planted, inside) == 0).all()


class Tiny(nn.Module):
    """(N, 2, 4, 4) -> (N, 3), float64, a smooth non-linear net: every feature changes the probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(48, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def tiny() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Tiny().double().eval()


def oracle_curves(model, x, maps, target, baseline, step):
    """One input at a time: features ordered by relevance (ties by position), k = ceil(1/step) steps of
    round(j n / k) features; a per-pixel map removes all channels of the pixel."""
    per_pixel = maps.shape != x.shape
    n_feat = maps[0].size
    k = min(math.ceil(1 / step - 1e-9), n_feat)
    counts = [round(j * n_feat / k) for j in range(k + 1)]
    dele, ins = np.zeros((len(x), k + 1)), np.zeros((len(x), k + 1))
    for i in range(len(x)):
        flat = maps[i].ravel().tolist()
        order = sorted(range(n_feat), key=lambda f: (-flat[f], f))
        for j, c in enumerate(counts):
            d, s = x[i].clone(), baseline[i].clone()
            for f in order[:c]:
                if per_pixel:
                    r, col = divmod(f, x.shape[-1])
                    d[:, r, col], s[:, r, col] = baseline[i][:, r, col], x[i][:, r, col]
                else:
                    idx = np.unravel_index(f, x.shape[1:])
                    d[idx], s[idx] = baseline[i][idx], x[i][idx]
            with torch.no_grad():
                dele[i, j] = torch.softmax(model(d[None]), 1)[0, target[i]].item()
                ins[i, j] = torch.softmax(model(s[None]), 1)[0, target[i]].item()
    fr = [c / n_feat for c in counts]
    auc = lambda y: sum((fr[j + 1] - fr[j]) * (y[j] + y[j + 1]) / 2 for j in range(k))  # noqa: E731
    return np.array(fr), dele, ins, np.array([auc(r) for r in dele]), np.array([auc(r) for r in ins])


@pytest.mark.parametrize("per_pixel,step", [(True, 0.05), (True, 0.3), (False, 0.125)])
def test_deletion_and_insertion_equal_the_oracle(per_pixel, step):
    model = tiny()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64)
    base = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64) * 0.1
    maps = torch.randn((3, 4, 4) if per_pixel else (3, 2, 4, 4), generator=g, dtype=torch.float64)
    t = torch.tensor([0, 2, 1])
    c = q.perturbation_curves(model, x, maps, t, base, step=step, rows_per_forward=7)
    fr, dele, ins, dauc, iauc = oracle_curves(model, x, maps.numpy(), t.tolist(), base, step)
    assert np.allclose(c.fractions, fr, atol=1e-15)
    assert np.abs(c.deletion - dele).max() < 1e-12 and np.abs(c.insertion - ins).max() < 1e-12
    assert np.abs(c.deletion_auc - dauc).max() < 1e-12 and np.abs(c.insertion_auc - iauc).max() < 1e-12
    assert c.deletion.shape == (3, len(fr)) and len(fr) == min(math.ceil(1 / step - 1e-9), maps[0].numel()) + 1


class PatchNet(nn.Module):
    """(N, 1, 8, 8) -> (N, 2): class 1's logit is 4 x the mean of the top-left 3x3 patch, class 0's is 0; nothing
    else reaches the output, so a map on the patch is right and its deletion curve falls at once."""

    def forward(self, x):
        s = 4 * x[:, 0, :3, :3].mean((1, 2))
        return torch.stack([torch.zeros_like(s), s], 1)


def test_the_panel_passes_a_right_map_and_fails_a_wrong_one():
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    right = torch.zeros(6, 8, 8, dtype=torch.float64)
    right[:, :3, :3] = 1.0
    right += 1e-3 * torch.rand(6, 8, 8, dtype=torch.float64)
    f = quality_panel(PatchNet(), x, {"right": right, "wrong": -right}, torch.ones(6, dtype=torch.long), step=0.05)
    checks = {c.name: c for c in f.checks}
    assert checks["quality_beats_random_right"].passed and not checks["quality_beats_random_wrong"].passed
    assert f.metrics["quality_deletion_auc_right"] < f.metrics["quality_deletion_auc_random"]
    assert f.metrics["quality_insertion_auc_wrong"] < f.metrics["quality_insertion_auc_random"]
    assert f.arrays["quality_deletion_right"].shape == (6, 21) and f.arrays["quality_fractions"][-1] == 1.0
    assert f.metrics["quality_gini_right"] > f.metrics["quality_gini_random"]


# ---- against Quantus (installed beside the pinned set; see the report note on requirements.txt) ------

def test_against_quantus():
    quantus = pytest.importorskip("quantus")
    a = np.abs(_maps(3, (4, 1, 6, 6))).astype(np.float64)
    mask = np.random.default_rng(4).random(a.shape) < 0.25
    kw = {"abs": False, "normalise": False, "disable_warnings": True}
    sp = quantus.Sparseness(**kw).evaluate_batch(x_batch=a.copy(), a_batch=a.copy())
    assert np.allclose(q.gini(a), sp, atol=1e-5)  # Quantus adds 1e-7 to every feature before sorting
    ent = quantus.Complexity(**kw).evaluate_batch(x_batch=a.copy(), a_batch=a.copy())
    assert np.allclose(q.effective_support(a), np.exp(ent) / a[0].size, rtol=1e-6)
    signed = _maps(5, (4, 1, 6, 6))
    ra = quantus.RelevanceMassAccuracy(**kw).evaluate_batch(a_batch=np.clip(signed, 0, None), s_batch=mask)
    assert np.allclose(q.relevance_mass(signed, mask), ra, atol=1e-12)
    rr = quantus.RelevanceRankAccuracy(**kw).evaluate_batch(a_batch=signed.copy(), s_batch=mask)
    assert np.allclose(q.relevance_rank(signed, mask), rr, atol=1e-12)
    pg = quantus.PointingGame(**kw).evaluate_batch(a_batch=signed.copy(), s_batch=mask)
    assert np.array_equal(q.pointing_game(signed, mask), np.asarray(pg, float))


# ---- wired into the analyzers ------------------------------------------------------------------------

@pytest.mark.parametrize("analyzer,extra", [("attribution", {"method": "saliency,integrated_gradients"}),
                                            ("lrp", {"dtype": "float64"})])
def test_quality_flag_adds_the_panel(analyzer, extra):
    import workbench as wb

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu, self.flat, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), \
                nn.Linear(4 * 64, 3)

        def forward(self, x):
            return self.fc(self.flat(self.relu(self.conv(x))))

    torch.manual_seed(0)
    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    r = wb.run(analyzer, model=Net().eval(), data=x, classes=("a", "b", "c"), quality=True, quality_step=0.1,
               sanity_check=False, device="cpu", **extra)
    names = r.info["quality_maps"]
    assert names and all(f"quality_beats_random_{m}" in {c.name for c in r.checks} for m in names)
    assert all(r.arrays[f"quality_deletion_{m}"].shape == (2, 11) for m in [*names, "random"])
    assert any("Deletion" in str(f.layout.annotations) for f in r.figures())
    off = wb.run(analyzer, model=Net().eval(), data=x, classes=("a", "b", "c"), sanity_check=False, device="cpu",
                 **extra)
    assert not any(k.startswith("quality_") for k in off.metrics)


# ---- ROAD (noisy linear imputation) -------------------------------------------------------------------

def oracle_impute(x: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """Dense, one equation per removed pixel written out by loops: (sum of in-picture neighbour weights + ridge)
    v_p - sum over removed neighbours w v_q = sum over kept neighbours w x_q; solved with numpy, no noise. The
    weights are ROAD's (Rong et al. 2022): 1/6 for the 4 direct neighbours, 1/12 for the 4 diagonal ones."""
    from analyzers._shared.quality_road import RIDGE

    direct, diagonal = 1 / 6, 1 / 12
    NEIGHBOURS = [(dy, dx, direct if dy == 0 or dx == 0 else diagonal)  # noqa: N806
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]

    c, h, w = x.shape
    cells = [(i, j) for i in range(h) for j in range(w) if gone[i, j]]
    where = {p: k for k, p in enumerate(cells)}
    a, b = np.zeros((len(cells), len(cells))), np.zeros((len(cells), c))
    for k, (i, j) in enumerate(cells):
        a[k, k] += RIDGE
        for dy, dx, wt in NEIGHBOURS:
            y, z = i + dy, j + dx
            if 0 <= y < h and 0 <= z < w:
                a[k, k] += wt
                if gone[y, z]:
                    a[k, where[(y, z)]] -= wt
                else:
                    b[k] += wt * x[:, y, z]
    v = np.linalg.solve(a, b)
    out = x.copy()
    for k, (i, j) in enumerate(cells):
        out[:, i, j] = v[k]
    return out


def test_noisy_linear_imputation_equals_the_dense_oracle_and_keeps_a_ramp():
    from analyzers._shared.quality_road import impute

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 9))
    gone = rng.random((7, 9)) < 0.4
    gone[0, :] = True  # a removed border row
    got = impute(x, gone, 0.0, np.random.default_rng(1))
    assert np.abs(got - oracle_impute(x, gone)).max() < 1e-10 and np.array_equal(got[:, ~gone], x[:, ~gone])
    ramp = np.fromfunction(lambda c, i, j: 0.3 * i - 0.2 * j + c, (2, 7, 9))
    inner = np.zeros((7, 9), bool)
    inner[2:5, 3:7] = True  # interior holes: the symmetric neighbour mean of a linear ramp is the ramp
    assert np.abs(impute(ramp, inner, 0.0, np.random.default_rng(1)) - ramp).max() < 1e-7
    everything = impute(x, np.ones((7, 9), bool), 0.0, np.random.default_rng(1))
    assert np.abs(everything).max() < 1e-12  # no kept neighbour at all: 0
    noisy = impute(x, gone, 0.05, np.random.default_rng(1))
    assert 0.02 < np.std(noisy[:, gone] - got[:, gone]) < 0.08


def test_road_curves_equal_a_loop_and_rank_a_right_map_first():
    from analyzers._shared.quality_road import road_curves

    model = tiny()
    g = torch.Generator().manual_seed(4)
    x, maps = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64), torch.randn(2, 4, 4, generator=g,
                                                                                       dtype=torch.float64)
    t = torch.tensor([1, 2])
    fr, morf, lerf = road_curves(model, x, maps, t, step=0.25, noise=0.0, rows_per_forward=3)
    for i in range(2):
        for curve, sign in ((morf, -1.0), (lerf, 1.0)):
            order = sorted(range(16), key=lambda f: (sign * maps[i].ravel()[f].item(), f))
            for j, c in enumerate([0, 4, 8, 12, 16]):
                gone = np.zeros(16, bool)
                gone[order[:c]] = True
                xi = torch.as_tensor(oracle_impute(x[i].numpy(), gone.reshape(4, 4)))
                with torch.no_grad():
                    want = torch.softmax(model(xi[None]), 1)[0, t[i]].item()
                assert abs(curve[i, j] - want) < 1e-9
    assert np.allclose(fr, [0, 0.25, 0.5, 0.75, 1.0])
    xp = torch.rand(4, 1, 8, 8, generator=g, dtype=torch.float64) + 0.5
    right = torch.zeros(4, 8, 8, dtype=torch.float64)
    right[:, :3, :3] = 1.0 + torch.rand(4, 3, 3, generator=g, dtype=torch.float64)
    f = quality_panel(PatchNet(), xp, {"right": right}, torch.ones(4, dtype=torch.long), step=0.1, road=True)
    assert f.metrics["quality_road_morf_auc_right"] < f.metrics["quality_road_morf_auc_random"]
    assert f.arrays["quality_road_lerf_right"].shape == (4, 11)
