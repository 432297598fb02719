"""Why LRP and IG localize the planted bursts less well than the CAM variant: every variant issue 17 asked
about (IG baseline, LRP rule and epsilon, explained output, readout) scored on the same windows, for the
trained model and for its randomized copy (the shared control). Computed on request (config ``variants``,
about 30 s for 40 windows on a CPU); the page shows the table, and tests/analyzers/eeg_saliency re-measure
the rows that decide a default.
"""

from __future__ import annotations

import numpy as np
import torch

from analyzers._shared.randomization import randomized_copy
from analyzers.eeg_saliency import maps as em
from analyzers.eeg_saliency.localization import READOUTS, localize

#: the variants, in table order; the first two are what the analyzer computes by default
VARIANTS = ("lrp eps=0.25 rms, logit difference (default LRP)", "ig zeros, logit difference (default IG)",
            "lrp eps=0 rms (= LRP-0)", "gradient x input", "lrp eps=0.25 rms", "lrp eps=1 rms", "lrp zplus",
            "lrp gamma=0.25", "lrp flat first layer", "lrp wsquare first layer", "ig zeros (= per-channel mean)",
            "ig blur sigma=4", "ig alpha band-stop 7.5-12.5 Hz")
MODELS = ("trained", "randomized")


def band_stop(x: torch.Tensor, lo: float, hi: float, sfreq: float) -> torch.Tensor:
    """x (N, C, T) with the FFT bins in [lo, hi] Hz set to zero."""
    spec = torch.fft.rfft(x.double(), dim=-1)
    f = torch.fft.rfftfreq(x.shape[-1], 1.0 / sfreq)
    spec[..., (f >= lo) & (f <= hi)] = 0
    return torch.fft.irfft(spec, n=x.shape[-1], dim=-1).to(x.dtype)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x (N, C, T) low-passed by a Gaussian of ``sigma`` samples along time (reflecting edges)."""
    r = int(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    flat = torch.nn.functional.pad(x.reshape(-1, 1, x.shape[-1]), (r, r), mode="reflect")
    return torch.nn.functional.conv1d(flat, k.view(1, 1, -1)).view_as(x)


def contrast_model(canon: torch.nn.Module) -> torch.nn.Module:
    """A copy of the canonical model whose logits are (z0 - z1, z1 - z0): explaining the difference that the
    two-class softmax depends on, instead of one raw logit."""
    import copy

    c = copy.deepcopy(canon)
    w, b = c[-1].weight.data.clone(), c[-1].bias.data.clone()
    c[-1].weight.data = torch.stack([w[0] - w[1], w[1] - w[0]])
    c[-1].bias.data = torch.stack([b[0] - b[1], b[1] - b[0]])
    return c


def ig(canon, x, target, baseline, steps: int = 32) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    return IntegratedGradients(canon).attribute(x, baselines=baseline, target=target, n_steps=steps,
                                                internal_batch_size=256).detach()


def lrp_rule(canon, x, target, rule: str) -> torch.Tensor:
    """LRP with another rule on both convolutions (zplus, gamma) or a special first layer (flat, wsquare)."""
    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite
    from zennit.rules import Epsilon, Flat, Gamma, Norm, Pass, WSquare, ZPlus
    from zennit.types import Activation, AvgPool, Convolution, Linear

    conv = {"zplus": ZPlus(), "gamma": Gamma(0.25)}.get(rule, Epsilon(1e-6))
    layers = [(Activation, Pass()), (AvgPool, Norm()), (Convolution, conv), (Linear, Epsilon(1e-6))]
    first = {"flat": Flat(), "wsquare": WSquare()}.get(rule)
    comp = SpecialFirstLayerMapComposite(layers, [(Convolution, first)]) if first else LayerMapComposite(layers)
    xin = x.detach().clone().requires_grad_(True)
    with Gradient(model=canon, composite=comp) as attributor:
        _, rel = attributor(xin, lambda o: torch.zeros_like(o).scatter(1, target[:, None],
                                                                       o.gather(1, target[:, None])))
    return rel.detach()


def variant_maps(canon, x, target, sfreq: float) -> dict:
    """name -> (n, 30, T) map for every variant of :data:`VARIANTS` on the canonical (raw-logit) model ``canon``."""
    zeros = torch.zeros_like(x)
    con = contrast_model(canon)
    grad = torch.autograd.functional.jacobian(lambda v: canon(v).gather(1, target[:, None]).sum(), x)
    out = {VARIANTS[0]: em.lrp_maps(con, x, target, 0.25, relative=True), VARIANTS[1]: ig(con, x, target, zeros),
           VARIANTS[2]: em.lrp_maps(canon, x, target, 0.0, relative=True), VARIANTS[3]: x * grad,
           VARIANTS[4]: em.lrp_maps(canon, x, target, 0.25, relative=True),
           VARIANTS[5]: em.lrp_maps(canon, x, target, 1.0, relative=True)}
    out.update({name: lrp_rule(canon, x, target, r) for name, r in zip(VARIANTS[6:10], ("zplus", "gamma", "flat",
                                                                                         "wsquare"), strict=True)})
    out[VARIANTS[10]] = ig(canon, x, target, zeros)
    out[VARIANTS[11]] = ig(canon, x, target, blur(x, 4.0))
    out[VARIANTS[12]] = ig(canon, x, target, band_stop(x, 7.5, 12.5, sfreq))
    return {k: out[k].float().cpu().numpy() for k in VARIANTS}


def variant_scores(w, x, target, mask, posterior) -> np.ndarray:
    """(n, V, 2, R, 3) float32: for each window, variant (:data:`VARIANTS`), model (trained, with the run's
    BatchNorm affine; the shared control's randomized copy, all layers, draw 0, with these windows' statistics),
    readout (:data:`READOUTS`) the (mass, posterior share, pointing) scores. ``w``: the analyzer's windows (module,
    BN affine, config, seed); x (n, 30, T) the evaluated windows, target (n,), mask (n, 30, T), posterior (30,)."""
    cfg = w.config
    rnd = randomized_copy(w.module, -1, w.ctx.seed, draw=0).module
    models = (em.canonical_model(w.module, w.scale, w.shift), em.canonical_model(rnd, *em.bn_affine(rnd, x, "batch")))
    out = np.zeros((len(x), len(VARIANTS), len(MODELS), len(READOUTS), 3), np.float32)
    for j, canon in enumerate(models):
        w.ctx.progress(0.66 + 0.04 * j, f"variants ({MODELS[j]} model)")
        for v, arr in enumerate(variant_maps(canon, x, target, w.sfreq).values()):
            for r, how in enumerate(READOUTS):
                out[:, v, j, r] = localize(arr, mask, posterior, cfg.dilate, how, cfg.radius)
    return out
