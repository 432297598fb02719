"""The five attribution methods (captum underneath), one function each, looked up by name in
:data:`IMPLEMENTATIONS`.

The table is the one place a method is chosen: the analyzer, the randomized control and IG's step
doubling all call :func:`attribute`, which reads it. Reference and mutation tests
(``tests/analyzers/attribution/test_reference.py``, ``tests/reliability/test_mutations.py``) swap an
entry for a wrong method and see the reference tests fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

IG_CHUNK = 16  # path steps per forward call: the cancel/progress granularity of IG
OCCLUSION_PER_EVAL = 16


@dataclass(frozen=True)
class Setup:
    """What every method call on a batch shares. ``x`` (N, C, H, W) float32 or float64, ``target`` (N,)
    int64, ``baseline`` like ``x``; ``cfg`` the analyzer's config (``n_steps`` read by IG);
    ``window``/``stride`` of occlusion in pixels."""

    x: torch.Tensor
    target: torch.Tensor
    baseline: torch.Tensor
    cfg: Any
    window: int
    stride: int

    def rows(self, i: torch.Tensor) -> Setup:
        """The same setup for the samples ``i`` (a chunk of the batch)."""
        return replace(self, x=self.x[i], target=self.target[i], baseline=self.baseline[i])

    def with_steps(self, n_steps: int) -> Setup:
        """The same setup with IG on ``n_steps`` path steps."""
        return replace(self, cfg=replace(self.cfg, n_steps=int(n_steps)))


def integrated_gradients(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    return IntegratedGradients(module).attribute(x, s.baseline, target=s.target, n_steps=s.cfg.n_steps,
                                                 internal_batch_size=IG_CHUNK * x.shape[0])


def saliency(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    from captum.attr import Saliency

    return Saliency(module).attribute(x, target=s.target, abs=True)


def input_x_gradient(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    from captum.attr import InputXGradient

    return InputXGradient(module).attribute(x, target=s.target)


def grad_cam(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    a = LayerGradCam(module, layer).attribute(x, target=s.target, relu_attributions=True)
    return LayerAttribution.interpolate(a, tuple(x.shape[-2:]), "bilinear")


def occlusion(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    from captum.attr import Occlusion

    c = x.shape[1]
    return Occlusion(module).attribute(x, (c, s.window, s.window), strides=(c, s.stride, s.stride),
                                       baselines=s.baseline, target=s.target,
                                       perturbations_per_eval=OCCLUSION_PER_EVAL)


#: method name -> fn(module, layer, x (n, C, H, W) requiring grad, Setup) -> (n, C|1, H, W) attribution
IMPLEMENTATIONS: dict[str, Callable] = {
    "integrated_gradients": integrated_gradients, "saliency": saliency, "input_x_gradient": input_x_gradient,
    "grad_cam": grad_cam, "occlusion": occlusion}


def attribute(method: str, module, layer, s: Setup) -> torch.Tensor:
    """One method on one chunk. s.x: (n, C, H, W) -> (n, H, W) channels summed; float64 stays float64
    (reference tests), anything else becomes float32."""
    x = s.x.detach().requires_grad_(True)
    a = IMPLEMENTATIONS[method](module, layer, x, s).detach().sum(1)
    return a if a.dtype == torch.float64 else a.float()


def expected_calls(method: str, s: Setup) -> int:
    """Forward calls a method makes over the batch s.x (N, C, H, W): the progress denominator."""
    n = s.x.shape[0]
    if method == "integrated_gradients":
        return n * -(-s.cfg.n_steps // IG_CHUNK)
    if method == "occlusion":
        cells = [-(-(side - s.window) // s.stride) + 1 for side in s.x.shape[-2:]]
        return n * (1 + -(-cells[0] * cells[1] // OCCLUSION_PER_EVAL))
    return n
