"""The seed paper's locality experiment: kernel regression with the empirical NTK of a hierarchical 1-D CNN.

Cagnetta, Favero & Wyart, "What can be learnt with wide convolutional neural networks?" (ICML 2023,
arXiv:2208.01003). A deep hierarchical CNN (filter size = stride = s, L layers, d = s^L inputs, ReLU)
has a kernel whose spectrum follows the network's tree of patches. Inputs live on a product of spheres
(every first-level patch of s numbers has unit norm). Qualitative claims reproduced here:

1. a target that depends on **one patch** has a steeper learning curve eps(n) ~ n^-beta than a
   **global** target (a function of all d inputs);
2. the local target's slope barely moves as depth L (hence d) grows;
3. the global target's slope falls (flattens) as d grows.

Control that must break the effect: the same regression with the NTK of a fully connected net (no
locality): the local target loses its advantage (its slope is no longer far steeper than the global one).

Targets are random ReLU teachers, standardised to unit variance: local f(x) = sum_k a_k relu(w_k . x_patch0)
with w_k in R^s, global f(x) = sum_k a_k relu(w_k . x / sqrt(s^(L-1))) with w_k in R^d. The error is the test
MSE divided by the target variance; the slope is the least-squares fit of log error against log n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from analyzers.kernel_spectra.ntk import ntk_gram


class HierarchicalCNN(nn.Module):
    """(N, 1, s^L) -> (N, 1): L layers Conv1d(k = s, stride = s) + ReLU (non-overlapping patches), a linear readout."""

    def __init__(self, s: int, depth: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv1d(1 if i == 0 else width, width, s, stride=s), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.readout = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x).flatten(1))


class MLP(nn.Module):
    """(N, 1, d) -> (N, 1): fully connected control with ``depth`` ReLU hidden layers (no locality)."""

    def __init__(self, d: int, depth: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(d if i == 0 else width, width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OverlapCNN(nn.Module):
    """(N, 1, d) -> (N, 1): L layers Conv1d(k=3, stride 1, padding 1) + ReLU, each followed by AvgPool1d(2) when
    ``pool``; a linear readout of the flattened features (overlapping filters, a comparison architecture)."""

    def __init__(self, d: int, depth: int, width: int, pool: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv1d(1 if i == 0 else width, width, 3, padding=1), nn.ReLU()]
            layers += [nn.AvgPool1d(2)] if pool else []
        self.features = nn.Sequential(*layers)
        self.readout = nn.Linear(width * (d // 2 ** depth if pool else d), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x).flatten(1))


def sphere_product_inputs(n: int, s: int, depth: int, rng: np.random.Generator) -> np.ndarray:
    """n points on a product of unit spheres: (n, 1, s^L) float64, every patch of s numbers has norm 1."""
    d = s ** depth
    z = rng.standard_normal((n, d // s, s))
    return (z / np.linalg.norm(z, axis=-1, keepdims=True)).reshape(n, 1, d)


def teacher(x: np.ndarray, kind: str, s: int, rng: np.random.Generator, features: int = 64) -> np.ndarray:
    """A random ReLU teacher on one patch ("local") or on all inputs ("global"). x: (n, 1, d) -> (n,)."""
    flat = x[:, 0]
    if kind == "local":
        inp = flat[:, :s]
    else:
        inp = flat / np.sqrt(flat.shape[1] / s)  # unit norm overall: same input scale as one patch
    w = rng.standard_normal((inp.shape[1], features))
    b = rng.standard_normal(features) * 0.5
    a = rng.standard_normal(features) / np.sqrt(features)
    return np.maximum(inp @ w + b, 0) @ a


def krr_errors(k: np.ndarray, y: np.ndarray, ns: list[int], n_test: int, ridge: float) -> np.ndarray:
    """Kernel ridge regression learning curve. k: (n_max + n_test) square Gram (train first); y: targets.

    Returns the normalised test error (MSE / var) for each train size in ``ns``."""
    n_max = max(ns)
    kt, yt = k[n_max:n_max + n_test, :n_max], y[n_max:n_max + n_test]
    out = []
    for n in ns:
        kn = k[:n, :n]
        lam = ridge * np.trace(kn) / n
        coef = np.linalg.solve(kn + lam * np.eye(n), y[:n] - y[:n].mean())
        pred = kt[:, :n] @ coef + y[:n].mean()
        out.append(np.mean((pred - yt) ** 2) / np.var(yt))
    return np.array(out)


def fit_slope(ns: list[int], err: np.ndarray) -> float:
    """Slope of log(err) against log(n) (negative = learning)."""
    return float(np.polyfit(np.log(ns), np.log(np.maximum(err, 1e-300)), 1)[0])


@dataclass(frozen=True)
class LocalityPlan:
    """The design of the locality experiment: inputs are products of ``s``-dim spheres (d = s^depth);
    kernel ridge regression (relative ``ridge``) on ``ns`` training points, scored on ``n_test`` more,
    averaged over ``reps`` draws of data, teacher and network (seeded from ``seed``); networks ``width``
    channels wide, hierarchical CNNs at each of ``depths``."""

    s: int = 2
    depths: tuple[int, ...] = (2, 3, 4)
    width: int = 64
    ns: tuple[int, ...] = (32, 64, 128, 256, 512)
    n_test: int = 256
    reps: int = 2
    seed: int = 0
    ridge: float = 1e-6


def learning_curves(model_fn, plan: LocalityPlan, depth: int) -> dict[str, np.ndarray]:
    """Mean learning curves (over ``plan.reps`` draws of data, teacher and network) for the local and the
    global target with the empirical NTK of ``model_fn()`` at inputs of d = s^depth. Returns
    {"local": (len(ns),), "global": (len(ns),), "eigs": the first draw's Gram eigenvalues, descending}."""
    s, ns, n_test, seed = plan.s, list(plan.ns), plan.n_test, plan.seed
    curves, eigs = {"local": [], "global": []}, None
    for r in range(plan.reps):
        rng = np.random.default_rng(seed * 1000 + r)
        x = sphere_product_inputs(max(ns) + n_test, s, depth, rng)
        torch.manual_seed(seed * 1000 + r)
        net = model_fn().double().eval()
        k = ntk_gram(net, torch.from_numpy(x), output="sum")
        if eigs is None:
            eigs = np.linalg.eigvalsh(k)[::-1].copy()
        for kind in curves:
            y = teacher(x, kind, s, rng)
            curves[kind].append(krr_errors(k, y, ns, n_test, plan.ridge))
    return {**{kind: np.exp(np.mean(np.log(v), 0)) for kind, v in curves.items()}, "eigs": eigs}


def locality_experiment(plan: LocalityPlan, progress=None) -> dict:
    """Learning curves and slopes for the hierarchical CNN at each depth, plus the MLP control at the
    largest depth's d. Returns arrays ``ns`` (m,), ``depths`` (D,), ``dims`` (D,), ``curve_local`` /
    ``curve_global`` (D, m), ``slope_local`` / ``slope_global`` (D,), ``mlp_curve_local`` /
    ``mlp_curve_global`` (m,), ``mlp_slope_local`` / ``mlp_slope_global`` (floats), ``arch_eigs`` (A, n) NTK Gram
    eigenvalues of several architectures on the same inputs (names in ``arch_names``)."""
    s, depths, width, ns = plan.s, plan.depths, plan.width, list(plan.ns)
    res: dict = {"ns": np.array(ns), "depths": np.array(depths), "dims": np.array([s ** L for L in depths])}
    cl, cg, eig_top = [], [], None
    steps = len(depths) + 1
    for i, depth in enumerate(depths):
        c = learning_curves(lambda depth=depth: HierarchicalCNN(s, depth, width), plan, depth)
        cl.append(c["local"])
        cg.append(c["global"])
        eig_top = c["eigs"]
        if progress is not None:
            progress((i + 1) / steps, f"hierarchical CNN, L={depth} (d={s ** depth})")
    res["curve_local"], res["curve_global"] = np.array(cl), np.array(cg)
    res["slope_local"] = np.array([fit_slope(ns, c) for c in cl])
    res["slope_global"] = np.array([fit_slope(ns, c) for c in cg])
    top = max(depths)
    c = learning_curves(lambda: MLP(s ** top, 2, width), plan, top)
    res["mlp_curve_local"], res["mlp_curve_global"] = c["local"], c["global"]
    res["mlp_slope_local"], res["mlp_slope_global"] = fit_slope(ns, c["local"]), fit_slope(ns, c["global"])
    res["arch_eigs"], res["arch_names"] = architecture_spectra(plan, top, eig_top, c["eigs"])
    if progress is not None:
        progress(1.0, "MLP control")
    return res


def architecture_spectra(plan: LocalityPlan, depth: int, hier: np.ndarray,
                         mlp: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """NTK Gram spectra at the same n = max(ns) + n_test on the same product-of-spheres inputs
    (d = s^depth): the hierarchical CNN and the MLP (already computed: ``hier``, ``mlp``), a hierarchical
    CNN with larger filters (s^2, half the depth) when d allows, and an overlapping-filter CNN with and
    without pooling. Returns ((A, n) descending, names)."""
    s, width, seed = plan.s, plan.width, plan.seed
    n, d = max(plan.ns) + plan.n_test, s ** depth
    x = torch.from_numpy(sphere_product_inputs(n, s, depth, np.random.default_rng(seed * 1000)))
    eigs, names = [hier, mlp], [f"hierarchical CNN, filter {s}", "MLP (no locality)"]
    nets = []
    if depth % 2 == 0:
        nets.append((f"hierarchical CNN, filter {s * s}", lambda: HierarchicalCNN(s * s, depth // 2, width)))
    pool_depth = min(depth, 3)
    nets += [("overlapping CNN (k=3) + pooling", lambda: OverlapCNN(d, pool_depth, width, True)),
             ("overlapping CNN (k=3), no pooling", lambda: OverlapCNN(d, pool_depth, width, False))]
    for name, make in nets:
        torch.manual_seed(seed * 1000)
        k = ntk_gram(make().double().eval(), x, output="sum")
        eigs.append(np.linalg.eigvalsh(k)[::-1].copy())
        names.append(name)
    return np.stack(eigs), names
