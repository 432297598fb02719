"""The five attribution methods, one function each, looked up by name in
:data:`IMPLEMENTATIONS`.

The table is the one place a method is chosen: the analyzer, the randomized control and IG's step
doubling all call :func:`attribute`, which reads it. Reference and mutation tests
(``tests/analyzers/attribution/test_attribution_reference.py``, ``tests/reliability/test_mutations.py``) swap
an entry for a wrong method and see the reference tests fail.

Saliency, Input x Gradient and Grad-CAM are a forward and one gradient each, written here with autograd instead
of captum's classes: captum must be given the target class before its forward, so the predicted class would
cost a second forward of its own (issue 21: Grad-CAM at 2.0x a hand-rolled pass). Written here, the method's
own forward names the class (``Setup.target`` None: :func:`resolve_target`) and the analyzer reads the logits
of that forward back (:class:`Recorder`). captum stays underneath IG and occlusion, whose forwards are not at
the input itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

IG_CHUNK = 16  # path steps per forward call, at least: the cancel/progress granularity of IG on large batches
IG_ROWS = 256  # ...and at least this many rows per call: a small batch is not split (4 calls at batch 1 cost 1.4x)
OCCLUSION_PER_EVAL = 16


@dataclass(frozen=True)
class Setup:
    """What every method call on a batch shares. ``x`` (N, C, H, W) or a signal (N, C, T), float32 or float64,
    ``target`` (N,) int64 or None (the methods that predict it, :data:`PREDICTING`, take it from their own forward with
    :func:`resolve_target`), ``baseline`` like ``x``; ``cfg`` the analyzer's config (``n_steps`` read by IG);
    ``window``/``stride`` of occlusion in pixels (pictures) or samples (signals)."""

    x: torch.Tensor
    target: torch.Tensor
    baseline: torch.Tensor
    cfg: Any
    window: int
    stride: int

    def rows(self, i: torch.Tensor) -> Setup:
        """The same setup for the samples ``i`` (a chunk of the batch)."""
        return replace(self, x=self.x[i], target=None if self.target is None else self.target[i],
                       baseline=self.baseline[i])

    def span(self, i: torch.Tensor) -> Setup:
        """:meth:`rows` for ``i`` a run of consecutive indices (a chunk of ``arange(N)``), as views: no copy of
        the chunk's input and baseline (a whole batch is one chunk at the usual batch sizes)."""
        lo = int(i[0]) if len(i) else 0
        sl = slice(lo, lo + len(i))
        return replace(self, x=self.x[sl], target=None if self.target is None else self.target[sl],
                       baseline=self.baseline[sl])

    def with_steps(self, n_steps: int) -> Setup:
        """The same setup with IG on ``n_steps`` path steps."""
        return replace(self, cfg=replace(self.cfg, n_steps=int(n_steps)))


def predicted(logits: torch.Tensor) -> torch.Tensor:
    """(N, K) logits -> (N,) int64: the class the analyzer explains by default (argmax of the float32 softmax,
    the probabilities it reports)."""
    return torch.softmax(logits.detach().float(), 1).argmax(1)


def resolve_target(out: torch.Tensor, s: Setup) -> torch.Tensor:
    """The (N,) classes to explain for the logits ``out`` (N, K) of the method's own forward: ``s.target`` when
    set, else the configured class (checked against K) or the predicted one."""
    if s.target is not None:
        return s.target
    if s.cfg.target >= out.shape[1]:
        from workbench.core.errors import ConfigError

        raise ConfigError(f"target {s.cfg.target} is not a class of the model (0..{out.shape[1] - 1})")
    if s.cfg.target >= 0:
        return torch.full((out.shape[0],), int(s.cfg.target), dtype=torch.long, device=out.device)
    return predicted(out)


def _target_grad(module, x: torch.Tensor, s: Setup, wrt: list[torch.Tensor] | None = None, layer=None):
    """One forward of ``x`` and the gradient of the explained logits (summed over the batch: every sample's
    logit depends on its own input only) with respect to ``x`` or to ``layer``'s output. Returns the
    gradient and, with ``layer``, its output (N, C', h, w)."""
    store: dict = {}

    def keep(module, args, output):  # the layer's own output is kept; what follows sees a clone, so an in-place
        store["a"] = output          # op after the layer cannot change it (captum's hook does the same)
        return output.clone()

    hook = layer.register_forward_hook(keep) if layer is not None else None
    try:
        with torch.enable_grad():  # as captum: a caller's no_grad block must not leave the forward without a graph
            out = module(x)
    finally:
        if hook is not None:
            hook.remove()
    t = resolve_target(out, s)
    a = store.get("a", x)
    (g,) = torch.autograd.grad(out.gather(1, t[:, None]).sum(), a)
    return g, a


@functools.lru_cache(maxsize=32)
def gauss_legendre(n_steps: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """captum's Gauss-Legendre step sizes and path points (alphas) for ``n_steps``, computed once per count:
    captum recomputes them (numpy's leggauss, an eigenvalue problem) twice on every attribute call, 2-8 ms each
    on a loaded 2-core CPU, up to a third of IG's time at batch 1 (issue 21)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    sizes, alphas = approximation_parameters("gausslegendre")
    return tuple(sizes(n_steps)), tuple(alphas(n_steps))


def integrated_gradients(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    """captum's IntegratedGradients with its internal batching written out (the loop of captum 0.9's
    ``_batch_attribution``, same sums in the same order) so the quadrature comes from :func:`gauss_legendre`."""
    from captum.attr import IntegratedGradients

    ig, (sizes, alphas) = IntegratedGradients(module), gauss_legendre(int(s.cfg.n_steps))
    per, total = ig_steps_per_call(x.shape[0]), None
    for a in range(0, len(sizes), per):
        part = ig._attribute((x,), (s.baseline,), target=s.target, n_steps=len(sizes[a:a + per]),
                             step_sizes_and_alphas=(list(sizes[a:a + per]), list(alphas[a:a + per])))[0]
        total = part if total is None else part.detach() + total
    return total


def ig_steps_per_call(n: int) -> int:
    """Path steps per forward call for a batch of ``n``: at least IG_CHUNK, at least IG_ROWS rows."""
    return max(IG_CHUNK, -(-IG_ROWS // max(1, n)))


def saliency(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    return _target_grad(module, x, s)[0].abs()  # Simonyan et al.: |d f_t / d x| (captum Saliency, abs=True)


def input_x_gradient(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    return x.detach() * _target_grad(module, x, s)[0]


def grad_cam(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    """Selvaraju et al.: ReLU(sum_c mean_hw(d f_t / d A_c) A_c), bilinearly upsampled to the input (captum's
    LayerGradCam + LayerAttribution.interpolate, same operations). A signal ``x`` (N, C, T): the layer's time
    axis (a Conv1d's (N, C', L), or a "time x 1" Conv2d's (N, C', L, 1) as in CREPE) linearly upsampled to T."""
    g, a = _target_grad(module, x, s, layer=layer)
    cam = torch.relu((g.mean(tuple(range(2, g.dim())), keepdim=True) * a).sum(1, keepdim=True))
    if x.dim() == 3:
        return torch.nn.functional.interpolate(time_axis(cam.detach()), x.shape[-1], mode="linear")
    return torch.nn.functional.interpolate(cam.detach(), tuple(x.shape[-2:]), mode="bilinear")


def time_axis(a: torch.Tensor) -> torch.Tensor:
    """A layer output (N, C, L) or (N, C, L, 1) / (N, C, 1, L) -> (N, C, L): the one axis that is time. Raises
    ConfigError for a layer with no such axis (two spatial axes over 1, or none)."""
    spatial = [d for d in a.shape[2:] if d > 1]
    if len(spatial) > 1 or a.dim() < 3:
        from workbench.core.errors import ConfigError

        raise ConfigError(f"a layer output of shape {tuple(a.shape)} has no single time axis for Grad-CAM",
                          "name a convolution over time with gradcam_layer=NAME")
    return a.reshape(a.shape[0], a.shape[1], -1)


def occlusion(module, layer, x: torch.Tensor, s: Setup) -> torch.Tensor:
    from captum.attr import Occlusion

    c, sides = x.shape[1], x.dim() - 2  # a window over time (signals) or a square patch (pictures)
    return Occlusion(module).attribute(x, (c,) + (s.window,) * sides, strides=(c,) + (s.stride,) * sides,
                                       baselines=s.baseline, target=s.target,
                                       perturbations_per_eval=OCCLUSION_PER_EVAL)


#: method name -> fn(module, layer, x (n, C, H, W) or (n, C, T) requiring grad, Setup) -> (n, C|1, ...) attribution
IMPLEMENTATIONS: dict[str, Callable] = {
    "integrated_gradients": integrated_gradients, "saliency": saliency, "input_x_gradient": input_x_gradient,
    "grad_cam": grad_cam, "occlusion": occlusion}


#: the methods whose own forward is at the input: they resolve a None target themselves (Recorder reads it)
PREDICTING = ("grad_cam", "saliency", "input_x_gradient")


class Recorder(torch.nn.Module):
    """Forwards to ``inner`` and keeps the logits of the first call at the input armed with :meth:`arm`: the
    prediction comes from the forward the explanation makes anyway. ``take()`` returns them (None when the
    method made no such call, e.g. a planted wrong method: the caller then runs its own forward)."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self._x, self._out = inner, None, None

    def arm(self, x: torch.Tensor) -> None:
        self._x, self._out = x, None

    def forward(self, x, *args, **kwargs):
        out = self.inner(x, *args, **kwargs)
        if self._x is not None and isinstance(x, torch.Tensor) and x.shape == self._x.shape \
                and x.data_ptr() == self._x.data_ptr():
            self._x, self._out = None, out.detach()
        return out

    def take(self) -> torch.Tensor | None:
        out, self._x, self._out = self._out, None, None
        return out


def attribute(method: str, module, layer, s: Setup) -> torch.Tensor:
    """One method on one chunk. s.x: (n, C, H, W) -> (n, H, W), or a signal (n, C, T) -> (n, T), channels summed;
    float64 stays float64 (reference tests), anything else becomes float32."""
    x = s.x.detach().requires_grad_(True)
    a = IMPLEMENTATIONS[method](module, layer, x, s).detach().sum(1)
    return a if a.dtype == torch.float64 else a.float()


def expected_calls(method: str, s: Setup) -> int:
    """Forward calls a method makes over the batch s.x (N, C, H, W): the progress denominator."""
    n = s.x.shape[0]
    if method == "integrated_gradients":
        return n * -(-s.cfg.n_steps // ig_steps_per_call(n))
    if method == "occlusion":
        cells = [-(-(side - s.window) // s.stride) + 1 for side in s.x.shape[2:]]
        return n * (1 + -(-math.prod(cells) // OCCLUSION_PER_EVAL))
    return n
