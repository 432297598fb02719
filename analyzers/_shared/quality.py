"""Quality metrics of a heat map, shared by the analyzers that draw maps (attribution, lrp).

Faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE; Samek et al. 2017 "region
perturbation"): the features of an input are removed (replaced by a baseline), or inserted into the
baseline, in the order of the map, a fraction ``step`` of them at a time, and the model's probability of
the explained class is read after each step. A faithful map makes the deletion curve fall fast (low AUC)
and the insertion curve rise fast (high AUC). All steps of a sample run as batched forwards; never one
pixel at a time (Quantus' pixel-flipping default: 50,176 forwards per picture at 224 x 224).

Complexity: Gini sparseness of |map| (Chalasani et al. 2020; Quantus ``Sparseness``) and the effective
support, exp(Shannon entropy of |map| / sum |map|) / n: the share of features a map of the same entropy
spread evenly would cover (Quantus ``Complexity`` is that entropy).

Localization against a ground-truth mask: relevance mass (share of positive relevance inside; Arras et al.
2022), relevance rank (share of the top-|mask| features inside; ibid.), pointing game (the maximum inside;
Zhang et al. 2018).

Shapes: a map is (N, ...) with either the input's shape (every element a feature) or the input's shape
without the channel axis (a pixel is a feature, all its channels are removed together). Everything is
computed in float64 and returned as numpy arrays (N,) or (N, steps + 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---- complexity -------------------------------------------------------------------------------------


def _flat_abs(a: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(a, np.float64)).reshape(len(a), -1)


def gini(a: np.ndarray) -> np.ndarray:
    """(N,) Gini index of |a| per sample: 0 = every feature equal, -> 1 = one feature holds everything.
    An all-zero map gets 0."""
    v = np.sort(_flat_abs(a), axis=1)
    n = v.shape[1]
    k = np.arange(1, n + 1)
    total = v.sum(1)
    return np.where(total > 0, ((2 * k - n - 1) * v).sum(1) / (n * np.maximum(total, 1e-300)), 0.0)


def effective_support(a: np.ndarray) -> np.ndarray:
    """(N,) exp(entropy of p = |a| / sum |a|) / n in (0, 1]: 1 = spread evenly, 1/n = one feature.
    An all-zero map gets 1 (no feature singled out)."""
    v = _flat_abs(a)
    total = v.sum(1, keepdims=True)
    p = v / np.maximum(total, 1e-300)
    ent = -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)
    return np.where(total[:, 0] > 0, np.exp(ent) / v.shape[1], 1.0)


# ---- localization -----------------------------------------------------------------------------------

def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float64).reshape(len(a), -1)


def relevance_mass(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) share of the positive relevance that lies inside ``mask`` (bool, shaped like ``a``); NaN where the
    map has no positive relevance."""
    pos, m = np.clip(_flat(a), 0, None), np.asarray(mask, bool).reshape(len(a), -1)
    total = pos.sum(1)
    return np.where(total > 0, (pos * m).sum(1) / np.where(total > 0, total, 1.0), np.nan)


def relevance_rank(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) share of the K highest-ranked features that lie inside ``mask``, K = the mask's size."""
    v, m = _flat(a), np.asarray(mask, bool).reshape(len(a), -1)
    out = np.full(len(v), np.nan)
    for i in range(len(v)):
        k = int(m[i].sum())
        if k:
            top = np.argsort(-v[i], kind="stable")[:k]
            out[i] = m[i, top].mean()
    return out


def pointing_game(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) 1.0 where a maximum of the map lies inside ``mask``, else 0.0."""
    v, m = _flat(a), np.asarray(mask, bool).reshape(len(a), -1)
    return np.any((v == v.max(1, keepdims=True)) & m, axis=1).astype(np.float64)


# ---- faithfulness -----------------------------------------------------------------------------------

@dataclass
class Curves:
    """Deletion / insertion curves: ``fractions`` (S,) of features perturbed, ``deletion`` and ``insertion``
    (N, S) probabilities of the explained class; the AUCs are trapezoids over ``fractions`` (in [0, 1])."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        return np.trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_auc(self) -> np.ndarray:
        return np.trapezoid(self.insertion, self.fractions, axis=1)


def step_counts(n_features: int, step: float) -> np.ndarray:
    """Features perturbed after each step: 0, ..., n_features in ceil(1 / step) equal steps (rounded)."""
    k = max(1, int(np.ceil(1.0 / step - 1e-9)))
    return np.round(np.linspace(0, n_features, min(k, n_features) + 1)).astype(np.int64)


def _feature_ranks(maps, x):
    """(N, F) rank of every feature (0 = most relevant; ties broken by position) and whether a feature is a
    pixel over all channels (True) or an element (False)."""
    import torch

    per_pixel = tuple(maps.shape) != tuple(x.shape)
    if per_pixel and tuple(maps.shape) != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"map shape {tuple(maps.shape)} fits neither the input {tuple(x.shape)} nor its pixels")
    flat = maps.reshape(len(maps), -1).double()
    order = torch.sort(-flat, dim=1, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=order.device).expand_as(order))
    return ranks, per_pixel


def perturbation_curves(forward, x, maps, target, baseline=None, *, step: float = 0.05,
                        rows_per_forward: int = 64) -> Curves:
    """Deletion and insertion curves of ``maps`` for ``forward`` (a torch module or function: (M, ...) ->
    (M, K) logits). ``x`` (N, C, ...) tensor, ``maps`` tensor (N, C, ...) or (N, ...) without C, ``target``
    (N,) int64, ``baseline`` like ``x`` (default zeros: what a removed feature becomes). ``step``: fraction of
    the features per step. Runs ``N * 2 * (1/step + 1)`` rows, ``rows_per_forward`` at a time, without grad."""
    import torch

    maps = torch.as_tensor(maps).to(x.device)
    base = torch.zeros_like(x) if baseline is None else baseline.to(x)
    ranks, per_pixel = _feature_ranks(maps, x)
    counts = step_counts(ranks.shape[1], step)
    s = len(counts)
    cnt = torch.as_tensor(counts, device=x.device)
    per_sample = max(1, rows_per_forward // (2 * s))
    dele, ins = [], []
    with torch.no_grad():
        for a in range(0, len(x), per_sample):
            xs, bs, rk, t = (v[a:a + per_sample] for v in (x, base, ranks, target))
            n = len(xs)
            gone = (rk[None] < cnt[:, None, None]).reshape(s, n, *(xs.shape[2:] if per_pixel else xs.shape[1:]))
            if per_pixel:
                gone = gone.unsqueeze(2)  # a pixel goes with all its channels
            batch = torch.cat([torch.where(gone, bs[None], xs[None]), torch.where(gone, xs[None], bs[None])])
            batch = batch.reshape(2 * s * n, *xs.shape[1:])
            logits = torch.cat([forward(batch[r:r + rows_per_forward])
                                for r in range(0, len(batch), rows_per_forward)])
            prob = torch.softmax(logits.double(), 1).reshape(2, s, n, -1)
            picked = prob.gather(3, t.view(1, 1, n, 1).expand(2, s, n, 1))[..., 0]
            dele.append(picked[0].T.cpu())
            ins.append(picked[1].T.cpu())
    return Curves(counts / counts[-1], torch.cat(dele).numpy(), torch.cat(ins).numpy())


def random_maps(shape: tuple, seed: int) -> np.ndarray:
    """A seeded map of i.i.d. uniform values: the baseline every real map must beat."""
    return np.random.default_rng(seed).random(shape)
