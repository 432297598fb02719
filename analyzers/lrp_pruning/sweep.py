"""The pruning schedule: accuracy at every requested rate for one criterion, published live.

Two schedules. ``iterative``: prune ``step`` percent of the units, recompute the scores on the smaller
model, repeat up to each rate (fine-tuning after every step when asked). ``one_shot``: rank every unit
once on the unpruned model and remove the lowest ones up to each rate (nested sets, fine-tuned afterwards
when asked). ``auto`` = iterative with fine-tuning, one-shot without: re-scoring a damaged, un-tuned
network only adds noise (measured on digits_vgg.sk with 3 reference samples per class: LRP kept 88% test
accuracy at 40% pruned one-shot, 61% when re-scored after every 10%).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from analyzers.lrp_pruning.criteria import Scoring, lowest, unit_scores
from analyzers.lrp_pruning.structure import PrunableLayer, count_flops, count_params, remove_units

EVAL_CHUNK = 256


def reference_set(x: torch.Tensor, y: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` random samples of every class (fewer if a class has fewer), fixed by ``seed``.
    x: (N, ...) float32, y: (N,) int64 -> the chosen rows in index order."""
    gen = np.random.default_rng(seed)
    yn = y.cpu().numpy()
    idx = np.concatenate([gen.choice(np.flatnonzero(yn == c), min(per_class, int((yn == c).sum())), replace=False)
                          for c in np.unique(yn)])
    idx = torch.from_numpy(np.sort(idx)).to(x.device)
    return x[idx], y[idx]


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (left in eval mode) on x (N, ...), y (N,)."""
    model.eval()
    hits = sum(int((model(x[s:s + EVAL_CHUNK]).argmax(1) == y[s:s + EVAL_CHUNK]).sum())
               for s in range(0, len(x), EVAL_CHUNK))
    return hits / max(1, len(x))


def finetune(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, config, gen: torch.Generator, ctx) -> None:
    """SGD (momentum 0.9, batch 64, ``config.finetune_lr``, ``config.finetune_epochs`` passes) on x (N, ...),
    y (N,) in place, cancellable through ``ctx``; back in eval mode afterwards."""
    opt = torch.optim.SGD(model.parameters(), lr=config.finetune_lr, momentum=0.9)
    model.train()
    try:
        for _ in range(config.finetune_epochs):
            for batch in torch.randperm(len(x), generator=gen).split(64):
                ctx.check_cancel()
                batch = batch.to(x.device)
                loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        model.eval()


@dataclass
class Sweep:
    """State shared by the criteria of one run: config, data splits (``sets``: x_/y_ train, test, ref),
    z^B bounds, the prunable layers of the unpruned model, the curves (test accuracy in [0, 1]) and
    sizes ((parameters, FLOPs per input)) per criterion, rate 0 first."""

    config: object
    rates: list[float]
    sets: dict
    bounds: tuple
    layers: list[PrunableLayer]
    ctx: object
    n_criteria: int
    curves: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(ly.units for ly in self.layers)

    @property
    def iterative(self) -> bool:
        mode = self.config.schedule
        return mode == "iterative" or (mode == "auto" and self.config.finetune)

    def start(self, base: torch.nn.Module, keys: list[str]) -> None:
        """Record the unpruned model as rate 0 of every series (``keys``: criterion or criterion_norm)."""
        acc = accuracy(base, self.sets["x_test"], self.sets["y_test"])
        size = (count_params(base), count_flops(base, self.sets["x_test"][:1]))
        self.curves = {c: [acc] for c in keys}
        self.sizes = {c: [size] for c in keys}

    def _scores(self, crit: str, norm: str, model, layers, gen) -> list[torch.Tensor]:
        return unit_scores(crit, model, layers, self.sets["x_ref"], self.sets["y_ref"],
                           Scoring(self.config.composite, self.bounds, norm, gen))

    def _prune(self, model, layers, scores, k: int) -> int:
        masks = lowest(scores, k)
        for ly, drop in zip(layers, masks, strict=True):
            if drop.any():
                remove_units(model, ly, torch.nonzero(~drop)[:, 0].to(self.sets["x_ref"].device))
        return sum(int(m.sum()) for m in masks)

    def _finetune(self, model, gen) -> None:
        if self.config.finetune:
            finetune(model, self.sets["x_train"], self.sets["y_train"], self.config, gen, self.ctx)

    def _record(self, key: str, ci: int, ri: int, model) -> None:
        self.curves[key].append(accuracy(model, self.sets["x_test"], self.sets["y_test"]))
        self.sizes[key].append((count_params(model), count_flops(model, self.sets["x_test"][:1])))
        self.ctx.publish("curves", {"rates": [0.0, *self.rates], "acc": {c: list(v) for c, v in self.curves.items()}})
        self.ctx.progress(0.03 + 0.93 * (ci + (ri + 1) / len(self.rates)) / self.n_criteria,
                          f"{key}: {self.rates[ri]:g}% pruned")

    def run(self, key: str, crit: str, norm: str, ci: int,
            base: torch.nn.Module) -> tuple[torch.nn.Module, list[PrunableLayer]]:
        """Prune a copy of ``base`` up to every rate with ``crit`` under normalization ``norm``, recording
        the curve as series ``key``; returns the model at the largest rate."""
        gen = torch.Generator().manual_seed(self.ctx.seed + 31 * ci)
        if not self.iterative:
            scores = self._scores(crit, norm, base, self.layers, gen)
            for ri, rate in enumerate(self.rates):
                self.ctx.check_cancel()
                model, layers = copy.deepcopy(base), copy.deepcopy(self.layers)
                self._prune(model, layers, scores, round(self.total * rate / 100))
                self._finetune(model, gen)
                self._record(key, ci, ri, model)
            return model, layers
        model, layers, removed = copy.deepcopy(base), copy.deepcopy(self.layers), 0
        step = max(1, round(self.total * self.config.step / 100)) if self.config.step > 0 else self.total
        for ri, rate in enumerate(self.rates):
            goal = round(self.total * rate / 100)
            while removed < goal:
                self.ctx.check_cancel()
                done = self._prune(model, layers, self._scores(crit, norm, model, layers, gen),
                                   min(step, goal - removed))
                if not done:
                    break  # every layer is down to one unit
                removed += done
                self._finetune(model, gen)
            self._record(key, ci, ri, model)
        return model, layers
