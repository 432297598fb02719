"""The model-parameter randomization control of Adebayo et al. 2018 ("Sanity checks for saliency maps",
arXiv:1810.03292), shared by attribution, lrp and eeg_saliency so their sanity results are comparable.

Policy (one for every analyzer):

* **Layers**: a layer is a module with its own parameters and a ``reset_parameters`` method (conv,
  linear, BatchNorm with affine, ...), in module-registration order. The cascade starts at the output:
  ``n_top`` layers are taken from the end of that order (-1 = all, 0 = none: a control that must fail).
* **What is re-drawn**: the layer's trainable parameters, from the layer's own initialization
  (``reset_parameters``), as the paper re-initializes "network weights (and other trainable variables)"
  (Fig. 2). For BatchNorm that is the affine pair (gamma = 1, beta = 0); its running statistics are
  buffers, not trainable variables, so they are kept.
* **Seed**: draw ``d`` of a run with seed ``s`` uses a private CPU generator seeded with
  ``s + SEED_OFFSET * (d + 1)`` (the offset keeps the control's weights apart from a random-init zoo
  card built from the same seed). Values are drawn on the CPU in float32 and then copied to the
  model's device and dtype, so the same seed gives the same copy on CPU and CUDA, in float32 and
  float64 runs alike. Layers are drawn from the top down in one stream, so the cascade is nested: the
  copy with ``k + 1`` layers randomized equals the one with ``k`` plus one more layer.
  The global RNG streams (CPU and CUDA) are left untouched.

The given module is never changed: the copy is a deep copy, returned in eval mode.

The same copy with every layer re-drawn (``n_top = -1``) is eMPRT's "fully randomized model" in the quality
panel (analyzers/_shared/quality_random.py), so the cascading control and eMPRT follow one BatchNorm policy.
Quantus' generator differs there: it calls ``reset_parameters``, which for BatchNorm also resets the running
statistics (mean 0, var 1); keeping them is the choice here because they are buffers, not trainable variables.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

SEED_OFFSET = 7919  # a prime: draw seeds of neighbouring run seeds do not collide for small draw counts


@dataclass
class RandomizedModel:
    """A randomized copy and what was re-initialized: ``layers`` are module names from the output down."""

    module: nn.Module
    layers: list[str] = field(default_factory=list)
    seed: int = 0

    @property
    def n_layers(self) -> int:
        return len(self.layers)


def parameterized_layers(module: nn.Module) -> list[str]:
    """Names of the layers the control can re-initialize, from the output down (reverse registration)."""
    return [n for n, m in module.named_modules()
            if callable(getattr(m, "reset_parameters", None)) and any(True for _ in m.parameters(recurse=False))][::-1]


def draw_seed(seed: int, draw: int = 0) -> int:
    """The generator seed of draw ``draw`` (0, 1, ...) of a run with seed ``seed``."""
    return int(seed) + SEED_OFFSET * (int(draw) + 1)


def _redraw(layer: nn.Module, generator: torch.Generator) -> None:
    """Re-draw ``layer``'s own parameters in place from its initialization, on a float32 CPU twin."""
    twin = copy.deepcopy(layer).to(device="cpu", dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):  # reset_parameters draws from the global CPU generator
        torch.random.default_generator.set_state(generator.get_state())
        twin.reset_parameters()
        generator.set_state(torch.random.default_generator.get_state())
    fresh = dict(twin.named_parameters(recurse=False))
    with torch.no_grad():
        for name, p in layer.named_parameters(recurse=False):
            p.copy_(fresh[name])  # parameters only: buffers such as BatchNorm running statistics are kept


def randomized_copy(module: nn.Module, n_top: int, seed: int, draw: int = 0) -> RandomizedModel:
    """A deep copy of ``module`` whose top ``n_top`` parameterized layers (-1 = all, 0 = none) are
    re-initialized, cascading from the output (see the module docstring for the seed and BatchNorm policy)."""
    rnd = copy.deepcopy(module)
    names = parameterized_layers(rnd)
    chosen = names[: len(names) if n_top < 0 else n_top]
    s = draw_seed(seed, draw)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(s)
    modules = dict(rnd.named_modules())
    for name in chosen:
        _redraw(modules[name], generator)
    return RandomizedModel(rnd.eval(), chosen, s)
