"""The shared quality panel (analyzers/_shared/quality_panel.py) on EEG saliency's maps, per window: each channel x
time sample a feature, removed = set to zero (the IG baseline). The forward the curves perturb is what the maps
explain: Cui's network with the run's BatchNorm affine, or the generic network in eval mode.

On request (option ``quality_randomization``) the panel also runs eMPRT (Hedström et al. 2023) and the random-logit
test (Sixt et al. 2020), which recompute every map with the method itself (:func:`explainers`):

* Cui's layout: the forward is :class:`CuiForward`, the shared module with the run's BatchNorm affine held fixed,
  so eMPRT's fully randomized copy re-draws pointwise, depthwise, BatchNorm affine and fc. The re-drawn copy's
  maps use the BatchNorm statistics of the analysed windows, as the randomization control does
  (truth._random_maps: a re-drawn model has no population statistics that fit it); the trained model's maps use
  the run's affine, so they equal the maps the result shows.
* Generic networks: :func:`generic.maps_for`, the same code path as the maps and the randomization control.

The other class: random-logit draws it among the classes other than the explained one (binary: the other class).
What is explained for it is defined as for the explained class: the CAM variant / Grad-CAM of that class's logit,
and for LRP / IG (option ``explain``) its logit or its contrast, i.e. that class's logit minus the mean of the
others' (maps.canonical_model, generic.coefficients: built from the target handed in). With two classes the
contrast of the other class is exactly minus the explained contrast, so IG's map is exactly negated and LRP's
(linear in its start relevance) too: a class-sensitive map, whose SSIM to the original is far below 1.
"""

from __future__ import annotations

import torch
from torch import nn

from analyzers._shared.findings import Findings
from analyzers._shared.quality_panel import quality_panel
from analyzers.eeg_saliency import generic as gm
from analyzers.eeg_saliency import maps as em


class CuiForward(nn.Module):
    """Cui et al.'s network with a fixed BatchNorm affine (``scale``, ``shift``): the logits the run's maps explain.
    ``net`` is the shared module (never changed: eMPRT re-draws a deep copy of this wrapper)."""

    def __init__(self, net: nn.Module, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("shift", shift.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return em.forward_parts(self.net, x, self.scale, self.shift)[2]


def _chunked(fn, x: torch.Tensor, target: torch.Tensor, size: int) -> torch.Tensor:
    """``fn(x, target)`` over chunks of ``size`` windows (the CAM variant's unfold holds k x C x K floats per
    window), concatenated."""
    return torch.cat([fn(x[i:i + size], target[i:i + size]) for i in range(0, len(x), size)])


def _cui_maps(w, m: CuiForward, x: torch.Tensor, target: torch.Tensor, name: str) -> torch.Tensor:
    cfg = w.config
    trained = m.net is w.module
    sc, sh = (m.scale, m.shift) if trained else em.bn_affine(m.net, x, "batch")
    if name == "cam":
        def one(xs, ts):
            z, a, _ = em.forward_parts(m.net, xs, sc, sh)
            return em.cam_heatmap(m.net, xs, z, a, ts, cfg.top_n, cfg.radius)

        return _chunked(one, x, target, w.ctx.batch_size)
    canon = em.canonical_model(m.net, sc, sh, contrast=cfg.explain == "contrast")
    if name == "lrp":
        return _chunked(lambda xs, ts: em.lrp_maps(canon, xs, ts, cfg.lrp_epsilon, relative=True), x, target,
                        w.ctx.batch_size)
    return _chunked(lambda xs, ts: xs * em.ig_gradients(canon, xs, ts, cfg.ig_steps), x, target, w.ctx.batch_size)


def explainers(w, names) -> dict:
    """name -> ``fn(module, x, target) -> (n, C, T) map`` recomputing that map of ``module`` (the panel's forward
    or its randomized copy) for the classes ``target``."""
    def make(name):
        if w.cui:
            return lambda m, x, t: _cui_maps(w, m, x, t, name)
        return lambda m, x, t: _chunked(lambda xs, ts: gm.maps_for(m, xs, ts, [name], w.config, w.cam_layer)[name],
                                        x, t, w.ctx.batch_size)

    return {n: make(n) for n in names}


def quality(w, maps: dict) -> Findings:
    """The panel on every map (numpy (n, C, T)); eMPRT and random logit too with ``quality_randomization``."""
    w.ctx.progress(0.5, "quality panel: deletion and insertion curves")
    forward = CuiForward(w.module, w.scale, w.shift) if w.cui else w.module
    tensors = {m: torch.as_tensor(v).to(w.x.device) for m, v in maps.items()}
    explain = explainers(w, list(maps)) if w.config.quality_randomization else None
    return quality_panel(forward, w.x, tensors, w.target, step=w.config.quality_step, seed=w.ctx.seed,
                         rows_per_forward=max(64, w.ctx.batch_size), explain=explain)
