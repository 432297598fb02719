"""Pruning criteria of Yeom et al.: one score per unit (conv filter or hidden neuron), low = prune first.

* ``lrp``: relevance of the unit, |R| summed over space and the reference samples (the initial
  relevance is the true-class logit); read at the unit's output after the (merged) BatchNorm.
* ``taylor``: |sum over samples and space of activation x gradient of the loss| (Molchanov et al. 2017,
  as the authors' code computes it: signed sum first, then the absolute value).
* ``gradient``: |sum over samples and space of the loss gradient| (Sun et al. 2017, same convention).
* ``weight``: L1 norm of the unit's incoming weights (Li et al. 2017), data-free.
* ``random``: uniform scores from the run's seed.
* ``lrp_inverted``: minus the LRP score (prunes the most relevant first): a control that must lose.

Normalization before the single global ranking (``Scoring.normalize``, see ``RULES``):

* ``per_layer``: every data-driven criterion rescaled per layer: LRP and weight divided by the layer's
  L1 sum (the authors' toy code), gradient and Taylor by the layer's L2 norm (their ``--norm``).
* ``image``: the authors' image (VGG/ResNet) code: LRP raw (they argue conservation makes layers
  comparable), the baselines per layer as above. On digits_vgg.sk this prunes the widest layers far too
  hard: LRP's AUC at 10-50% falls from 0.920 to 0.683 (mean of seeds 0-2, 10 reference samples per class),
  below gradient 0.867 and weight 0.876.
* ``none``: raw scores for every criterion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from analyzers._shared.lrp import RelevanceTape, applied, grads_or_zeros, make_composite, plan_canonization
from analyzers.lrp_pruning.structure import PrunableLayer

CRITERIA = ("lrp", "taylor", "gradient", "weight", "random", "lrp_inverted")
NORMALIZATIONS = ("per_layer", "image", "none")
#: (normalization, criterion) -> per-layer rescaling: "l1" (divide by the layer's sum of |s|), "l2" (by
#: its Euclidean norm) or "raw"; random is always raw (its scale is arbitrary).
RULES = {
    "per_layer": {"lrp": "l1", "weight": "l1", "taylor": "l2", "gradient": "l2"},
    "image": {"lrp": "raw", "weight": "l1", "taylor": "l2", "gradient": "l2"},
    "none": {},
}
CHUNK = 64


def _tapped(model: nn.Module, layers: list[PrunableLayer], x: torch.Tensor):
    """Forward ``x`` recording each layer's score tensor (N, units, ...); returns (output, tensors)."""
    with RelevanceTape(model, [ly.score_at for ly in layers], inputs=False) as tape:
        out = model(x.detach().clone().requires_grad_(True))
    by_name = dict(zip(tape.calls, tape.outputs, strict=True))
    return out, [by_name[ly.score_at] for ly in layers]


def _per_unit(t: torch.Tensor) -> torch.Tensor:
    """(N, units, ...) -> (N, units) summed over space, float64."""
    return t.detach().double().reshape(t.shape[0], t.shape[1], -1).sum(2)


def _gradient_scores(model, layers, x, y, taylor: bool) -> list[torch.Tensor]:
    acc = [torch.zeros(ly.units, dtype=torch.float64, device=x.device) for ly in layers]
    for s in range(0, len(x), CHUNK):
        out, acts = _tapped(model, layers, x[s:s + CHUNK])
        loss = nn.functional.cross_entropy(out, y[s:s + CHUNK], reduction="sum") / len(x)
        grads = grads_or_zeros(loss, acts, torch.ones_like(loss))
        for i, (a, g) in enumerate(zip(acts, grads, strict=True)):
            acc[i] += _per_unit(a * g if taylor else g).sum(0)
    return [v.abs() for v in acc]


@dataclass(frozen=True)
class Scoring:
    """How units are scored beyond the criterion: the LRP ``composite`` and its z^B input ``bounds``
    (low, high), each broadcastable to the input; the per-layer ``normalize`` setting (one of
    ``NORMALIZATIONS``);
    the ``generator`` of the random criterion."""

    composite: str = "paper"
    bounds: tuple = (None, None)
    normalize: str = "per_layer"
    generator: torch.Generator | None = None


def _lrp_scores(model, layers, x, y, scoring: Scoring) -> list[torch.Tensor]:
    acc = [torch.zeros(ly.units, dtype=torch.float64, device=x.device) for ly in layers]
    plan = plan_canonization(model)
    low, high = scoring.bounds
    composite = make_composite(scoring.composite, low, high, canonizers=plan.canonizers)
    with applied(composite, model):
        for s in range(0, len(x), CHUNK):
            out, rel_at = _tapped(model, layers, x[s:s + CHUNK])
            yy = y[s:s + CHUNK, None]
            r0 = torch.zeros_like(out).scatter_(1, yy, out.detach().gather(1, yy))
            rel = grads_or_zeros(out, rel_at, r0)
            for i, r in enumerate(rel):
                acc[i] += r.detach().double().abs().reshape(r.shape[0], r.shape[1], -1).sum((0, 2))
    return acc


def unit_scores(criterion: str, model: nn.Module, layers: list[PrunableLayer], x: torch.Tensor, y: torch.Tensor,
                scoring: Scoring = Scoring()) -> list[torch.Tensor]:
    """Scores (float64, one tensor of ``layer.units`` per layer) for the current model.

    ``x``: reference inputs (N, ...), ``y``: their true labels (N,) int64; ``scoring``: composite, z^B
    bounds, normalization and random generator. The model is used in eval mode and restored."""
    modules = dict(model.named_modules())
    base = criterion.removesuffix("_inverted")
    if base == "weight":
        scores = [modules[ly.producer].weight.detach().double().abs().flatten(1).sum(1) for ly in layers]
    elif base == "random":
        scores = [torch.rand(ly.units, generator=scoring.generator, dtype=torch.float64).to(x.device)
                  for ly in layers]
    elif base in ("taylor", "gradient"):
        scores = _gradient_scores(model, layers, x, y, taylor=base == "taylor")
    elif base == "lrp":
        scores = _lrp_scores(model, layers, x, y, scoring)
    else:
        raise ValueError(f"unknown criterion {criterion!r}")
    scores = [_normalized(s, base, scoring.normalize) for s in scores]
    return [-s for s in scores] if criterion.endswith("_inverted") else scores


def rule(criterion: str, normalize: str) -> str:
    """The per-layer rescaling ("l1" | "l2" | "raw") of ``criterion`` under ``normalize``."""
    if normalize not in RULES:
        raise ValueError(f"unknown normalization {normalize!r}")
    return RULES[normalize].get(criterion.removesuffix("_inverted"), "raw")


def _normalized(s: torch.Tensor, base: str, how: str) -> torch.Tensor:
    """One layer's scores rescaled for the global ranking (see ``RULES``)."""
    r = rule(base, how)
    if r == "l2":
        return s / s.norm().clamp_min(1e-30)
    if r == "l1":
        return s / s.abs().sum().clamp_min(1e-30)
    return s


def lowest(scores: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Boolean masks (per layer) of the ``k`` globally lowest scores, never a layer's last unit.
    Ties are broken by layer order then index, so the choice is deterministic."""
    flat = torch.cat([s.cpu() for s in scores])
    owner = torch.cat([torch.full((len(s),), i) for i, s in enumerate(scores)])
    left = torch.tensor([len(s) for s in scores])
    masks = [torch.zeros(len(s), dtype=torch.bool) for s in scores]
    offsets = torch.cumsum(torch.tensor([0] + [len(s) for s in scores]), 0)
    taken = 0
    for j in torch.argsort(flat, stable=True).tolist():
        if taken == k:
            break
        i = int(owner[j])
        if left[i] <= 1:
            continue
        masks[i][j - int(offsets[i])] = True
        left[i] -= 1
        taken += 1
    return masks
