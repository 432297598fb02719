"""EEG saliency on any EEG network that takes (N, C, T) windows (braindecode's EEGNet, ShallowFBCSPNet, Deep4Net,
a user's module with channel names): the analyzer's three map families defined without Cui et al.'s layout.

* ``cam``: Grad-CAM (Selvaraju et al. 2017), because the paper's CAM variant back-maps through Cui's
  pointwise/depthwise layout and exists only there. Layer: the ``cam_layer`` option, else the deepest
  convolution whose output still has a time axis (more than one step). Map: ReLU(sum_k alpha_k A_k), alpha_k the
  mean gradient of the explained output over the layer's positions, resampled linearly onto the input's T
  samples. When the layer's output keeps an axis of the input's channel count (e.g. EEGNet's temporal conv),
  that axis gives the channels; otherwise (spatial filters already mixed the channels) the map is a time profile,
  the same on every channel, and ``info['cam_channels']`` says so: its topomap and channel scores mean nothing.
* ``lrp``: zennit LRP-epsilon (epsilon x the RMS of each convolution's output per window, as on Cui's network)
  on a private copy canonized by the shared plan (BatchNorm merged exactly into its conv), LRP-0 on dense layers,
  Norm on average pools, Pass on activations.
* ``ig``: captum Integrated Gradients from the zero baseline (Gauss-Legendre), on the shared module in eval mode.

What is explained: ``contrast`` (the target logit minus the mean of the others: what the softmax decision depends
on) or the raw ``logit`` (config ``explain``), the same for the three methods. Nothing here changes the module.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from analyzers.eeg_saliency.maps import IG_CHUNK, relative_stabilizer
from workbench.core.errors import ConfigError, UnsupportedModelError


def coefficients(logits: torch.Tensor, target: torch.Tensor, contrast: bool) -> torch.Tensor:
    """(N, K) weights c with explained output = sum_k c_k logit_k: one-hot, or one-hot minus the others' mean."""
    onehot = torch.zeros_like(logits).scatter(1, target[:, None], 1.0)
    k = logits.shape[1]
    return onehot - (1 - onehot) / (k - 1) if contrast and k > 1 else onehot


def explained(module: nn.Module, x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """(N,) the explained output of ``x`` (N, C, T)."""
    return (module(x) * coef).sum(1)


# ---- Grad-CAM ---------------------------------------------------------------------------------------------

def _convs(module: nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]


@torch.no_grad()
def _output_shapes(module: nn.Module, x: torch.Tensor, names: list[str]) -> dict:
    shapes, mods = {}, dict(module.named_modules())
    def keep(name):
        def hook(_m, _i, o) -> None:  # returns None: a forward hook's return value would replace the output
            shapes.setdefault(name, tuple(o.shape))
        return hook

    handles = [mods[n].register_forward_hook(keep(n)) for n in names]
    try:
        module(x[:1])
    finally:
        for h in handles:
            h.remove()
    return shapes


def cam_layer(module: nn.Module, x: torch.Tensor, name: str = "") -> str:
    """The Grad-CAM layer: ``name`` when given (ConfigError when it is not a module with a time axis), else the
    deepest convolution whose output has more than one position along its longest spatial axis."""
    convs = _convs(module)
    if name:
        if name not in dict(module.named_modules()):
            raise ConfigError(f"cam_layer {name!r} is not a layer of this model",
                              f"pick one of {', '.join(convs[-4:]) or 'its layers'}")
        convs = [name]
    shapes = _output_shapes(module, x, convs)
    timed = [n for n in convs if n in shapes and len(shapes[n]) >= 3 and max(shapes[n][2:]) > 1]
    if not timed:
        raise UnsupportedModelError("no convolution of this model keeps a time axis, so Grad-CAM has no map",
                                    "use methods=lrp,ig, or name a layer with cam_layer")
    return timed[-1]


def _to_channels_time(cam: torch.Tensor, c: int, t: int) -> tuple[torch.Tensor, bool]:
    """(N, *spatial) Grad-CAM -> (N, c, t): time = the longest spatial axis, channels = another axis of size c
    (else the profile is copied to every channel; the flag says whether channels are real)."""
    spatial = list(range(1, cam.dim()))
    time_ax = max(spatial, key=lambda a: cam.shape[a])
    chan_ax = next((a for a in spatial if a != time_ax and cam.shape[a] == c), None)
    rest = [a for a in spatial if a not in (time_ax, chan_ax)]
    if rest:
        cam = cam.sum(rest, keepdim=True)
    if chan_ax is None:
        prof = cam.movedim(time_ax, -1).reshape(len(cam), 1, -1)
        prof = nn.functional.interpolate(prof, size=t, mode="linear", align_corners=True)
        return prof.expand(-1, c, -1).contiguous(), False
    grid = cam.movedim(chan_ax, 1).movedim(time_ax, -1).reshape(len(cam), c, -1)
    return nn.functional.interpolate(grid, size=t, mode="linear", align_corners=True), True


def gradcam(module: nn.Module, x: torch.Tensor, coef: torch.Tensor, layer: str) -> tuple[torch.Tensor, bool]:
    """Grad-CAM of the explained output at ``layer``: ((N, C, T) float32 >= 0, whether channels are real)."""
    store = {}
    mod = dict(module.named_modules())[layer]
    def hook(_m, _i, o) -> None:  # returns None: the output stays the layer's own
        store["a"] = o

    handle = mod.register_forward_hook(hook)
    try:
        xin = x.detach().clone().requires_grad_(True)
        out = explained(module, xin, coef)
        a = store["a"]
        (g,) = torch.autograd.grad(out.sum(), a)
    finally:
        handle.remove()
    alpha = g.mean(tuple(range(2, g.dim())), keepdim=True)
    cam = torch.relu((alpha * a).sum(1)).detach()
    m, real = _to_channels_time(cam, x.shape[1], x.shape[2])
    return m.float(), real


# ---- LRP and IG -------------------------------------------------------------------------------------------

def lrp(module: nn.Module, x: torch.Tensor, coef: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, list[str]]:
    """LRP-epsilon relevance (N, C, T) of the explained output, on a canonized private copy; also the plan's
    problems (what the canonizers could not make exact, e.g. a BatchNorm they cannot merge)."""
    from zennit.composites import LayerMapComposite
    from zennit.rules import Epsilon, Norm, Pass
    from zennit.types import Activation, AvgPool, Convolution

    from analyzers._shared.canonizers import bake_parametrizations
    from analyzers._shared.lrp import applied, plan_canonization

    net = copy.deepcopy(module).eval()
    bake_parametrizations(net)  # EEGNet's max-norm conv becomes plain, so the BatchNorm after it can merge
    for p in net.parameters():
        p.requires_grad_(False)
    plan = plan_canonization(net)
    composite = LayerMapComposite([(Activation, Pass()), (AvgPool, Norm()),
                                   (Convolution, Epsilon(relative_stabilizer(epsilon))), (nn.Linear, Epsilon(1e-6))],
                                  canonizers=plan.canonizers)
    with applied(composite, net):
        bns = _batchnorms(net)
        xin = x.detach().clone().requires_grad_(True)
        out = net(xin)
        (rel,) = torch.autograd.grad(out, xin, (out * coef).detach())
    problems = list(plan.problems)
    if bns["unmerged"]:
        problems.append(f"BatchNorm {', '.join(bns['unmerged'])} not merged (relevance passes it by its gradient)")
    elif bns["all"] and any("could not be traced" in p for p in problems):  # say what was verified after all
        problems = [p.replace("BatchNorm merges and residual additions are unverified",
                              f"all {len(bns['all'])} BatchNorm layers merged by module order (checked), residual "
                              "additions unchecked") for p in problems]
    return rel.detach().float(), problems


def _batchnorms(net: nn.Module) -> dict:
    """Inside a composite: every BatchNorm (``all``) and those not the identity after the canonizers (``unmerged``)."""
    out = {"all": [], "unmerged": []}
    for name, m in net.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.affine:
            out["all"].append(name)
            ident = (m.eps == 0 and bool((m.running_mean == 0).all()) and bool((m.running_var == 1).all())
                     and bool((m.weight == 1).all()) and bool((m.bias == 0).all()))
            if not ident:
                out["unmerged"].append(name)
    return out


def ig_gradients(module: nn.Module, x: torch.Tensor, coef: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Path-averaged gradients G (N, C, T) of the explained output along the straight path from zeros
    (captum, multiply_by_inputs=False, Gauss-Legendre); IG = x * G."""
    from captum.attr import IntegratedGradients

    def forward(v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # captum expands c along the path with v
        return explained(module, v, c)[:, None]

    ig = IntegratedGradients(forward, multiply_by_inputs=False)
    g = ig.attribute(x.detach(), baselines=torch.zeros_like(x), target=0, n_steps=n_steps,
                     additional_forward_args=(coef,),
                     internal_batch_size=max(len(x), min(len(x) * n_steps, IG_CHUNK)))
    return g.detach().float()


def maps_for(module: nn.Module, x: torch.Tensor, target: torch.Tensor, methods, config, layer: str) -> dict:
    """method -> (n, C, T) torch map of ``module`` on ``x`` (used for the trained model and its randomized copies;
    ``layer``: the Grad-CAM layer)."""
    with torch.no_grad():
        coef = coefficients(module(x), target, config.explain == "contrast")
    out = {}
    if "cam" in methods:
        out["cam"] = gradcam(module, x, coef, layer)[0]
    if "lrp" in methods:
        out["lrp"] = lrp(module, x, coef, config.lrp_epsilon)[0]
    if "ig" in methods:
        out["ig"] = x * ig_gradients(module, x, coef, config.ig_steps)
    return out


def maps(w, methods: list[str], out) -> tuple[dict, torch.Tensor | None]:
    """The analyzer's ``_maps`` for a generic network ``w.module``: method -> (n, C, T) float32 numpy, and IG's
    path-averaged gradients (n, C, T) (None without IG). Conservation and completeness go into ``out.metrics``."""
    cfg, ctx, x, target, module = w.config, w.ctx, w.x, w.target, w.module
    idx = torch.arange(len(x), device=x.device)
    with torch.no_grad():
        coef = coefficients(module(x), target, cfg.explain == "contrast")
    res, grads = {}, None
    if "cam" in methods:
        layer = w.cam_layer = cam_layer(module, x, cfg.cam_layer)
        real = gradcam(module, x[:1], coef[:1], layer)[1]
        res["cam"] = ctx.batched(lambda i: gradcam(module, x[i], coef[i], layer)[0], idx, start=0.05, stop=0.12,
                                 label="Grad-CAM")
        out.info.update(cam_layer=layer, cam_channels=bool(real), cam_method="Grad-CAM (Selvaraju et al. 2017)")
    if "lrp" in methods:
        problems: list[str] = []

        def one(i):
            r, p = lrp(module, x[i], coef[i], cfg.lrp_epsilon)
            problems.extend(q for q in p if q not in problems)
            return r

        res["lrp"] = ctx.batched(one, idx, start=0.12, stop=0.25, label="LRP")
        with torch.no_grad():
            value = explained(module, x, coef)
        out.metrics["lrp_conservation"] = float((res["lrp"].sum((1, 2)) / value).median())
        out.info["lrp_problems"] = problems
    if "ig" in methods:
        grads = ctx.batched(lambda i: ig_gradients(module, x[i], coef[i], cfg.ig_steps), idx, start=0.25,
                            stop=0.55, label="Integrated Gradients")
        res["ig"] = x * grads
        with torch.no_grad():
            diff = explained(module, x, coef) - explained(module, torch.zeros_like(x), coef)
        gap = (res["ig"].sum((1, 2)) - diff).abs() / diff.abs().clamp_min(1e-6)
        out.metrics["ig_completeness_gap"] = float(gap.median())
    return {k: v.detach().cpu().numpy() for k, v in res.items()}, grads


def random_mapper(w):
    """A function (randomized module, x, target, methods) -> method -> (n, C, T) numpy, for the shared control."""

    def fn(rnd: nn.Module, x: torch.Tensor, target: torch.Tensor, methods) -> dict:
        # the copy has the trained model's layer names: the same Grad-CAM layer
        return {k: v.detach().cpu().numpy() for k, v in maps_for(rnd, x, target, methods, w.config,
                                                                  w.cam_layer).items()}

    return fn


def channel_uniform(arr: np.ndarray) -> bool:
    """True when every channel of every map (N, C, T) holds the same values (a Grad-CAM time profile)."""
    return bool(np.allclose(arr, arr[:, :1], rtol=0, atol=1e-12 * max(1.0, float(np.abs(arr).max()))))
