"""Attribution maps with captum: Integrated Gradients, Saliency, Input x Gradient,
Grad-CAM and Occlusion, with IG's completeness gap and Adebayo et al.'s
model-randomization sanity check.

References: Sundararajan et al. 2017 (IG, completeness); Simonyan et al. 2014 (saliency);
Selvaraju et al. 2017 (Grad-CAM); Zeiler & Fergus 2014 (occlusion); Adebayo et al. 2018
(sanity checks: cascading randomization from the top layer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from analyzers.attribution.result import METHODS, AttributionResult
from workbench.core import Analyzer, Check, option, register_analyzer
from workbench.core.errors import ConfigError

RHO_THRESHOLD = 0.5
IG_CHUNK = 16  # path steps per forward call: the cancel/progress granularity of IG
OCCLUSION_PER_EVAL = 16
GAP_THRESHOLD = 0.01


@dataclass(frozen=True)
class AttributionConfig:
    method: str = option("integrated_gradients,saliency,grad_cam",
                         "attribution methods, comma-separated", choices=METHODS, multi=True)
    target: int = option(-1, "class to explain; -1 = the predicted class", min=-1, max=100000)
    n_steps: int = option(64, "Integrated Gradients path steps (Gauss-Legendre)", min=4, max=1024)
    baseline: str = option("zero", "IG/occlusion baseline in model-input space",
                           choices=("zero", "blur"))
    gradcam_layer: str = option("", "module name for Grad-CAM; empty = the card's first layer of interest")
    occlusion_window: int = option(0, "occlusion patch side in pixels; 0 = input side / 8", min=0, max=512)
    occlusion_stride: int = option(0, "occlusion stride in pixels; 0 = window / 2", min=0, max=512)
    sanity_check: bool = option(True, "run the model-randomization sanity check (Adebayo et al.)")
    randomize_layers: int = option(-1, "top parameterized layers to re-initialize, from the output down; "
                                       "-1 = all (full cascade), 0 = none (a control that must fail)",
                                   min=-1, max=1000)


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = max(3, (x.shape[-1] // 8) | 1)
    return torch.nn.functional.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def _gradcam_layer(module: torch.nn.Module, card, name: str) -> tuple[str, torch.nn.Module]:
    mods = dict(module.named_modules())
    if not name:
        convs = [n for n, m in mods.items() if isinstance(m, torch.nn.Conv2d)]
        name = next((n for n in card.layers_of_interest if n in mods), convs[-1] if convs else "")
    if name not in mods or name == "":
        convs = [n for n, m in mods.items() if isinstance(m, torch.nn.Conv2d)][-4:]
        raise ConfigError(f"gradcam_layer {name!r} is not a module of {card.id}",
                          f"e.g. {', '.join(convs)}")
    return name, mods[name]


def _attribute(method: str, module, layer, x, target, baseline, cfg, window, stride):
    """One method on one chunk. x: (n, C, H, W) float32 -> (n, H, W) float32 (channels summed)."""
    from captum import attr as ca

    x = x.detach().requires_grad_(True)
    if method == "integrated_gradients":
        a = ca.IntegratedGradients(module).attribute(x, baseline, target=target, n_steps=cfg.n_steps,
                                                     internal_batch_size=IG_CHUNK * x.shape[0])
    elif method == "saliency":
        a = ca.Saliency(module).attribute(x, target=target, abs=True)
    elif method == "input_x_gradient":
        a = ca.InputXGradient(module).attribute(x, target=target)
    elif method == "grad_cam":
        a = ca.LayerGradCam(module, layer).attribute(x, target=target, relu_attributions=True)
        a = ca.LayerAttribution.interpolate(a, tuple(x.shape[-2:]), "bilinear")
    else:  # occlusion
        c = x.shape[1]
        a = ca.Occlusion(module).attribute(x, (c, window, window), strides=(c, stride, stride),
                                           baselines=baseline, target=target,
                                           perturbations_per_eval=OCCLUSION_PER_EVAL)
    return a.detach().sum(1).float()


def _expected_calls(method: str, x: torch.Tensor, cfg, window: int, stride: int) -> int:
    """Forward calls a method makes over the batch x (N, C, H, W): the progress denominator."""
    n = x.shape[0]
    if method == "integrated_gradients":
        return n * -(-cfg.n_steps // IG_CHUNK)
    if method == "occlusion":
        cells = [-(-(s - window) // stride) + 1 for s in x.shape[-2:]]
        return n * (1 + -(-cells[0] * cells[1] // OCCLUSION_PER_EVAL))
    return n


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    rho = spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def randomized_copy(module: torch.nn.Module, n_top: int, seed: int) -> tuple[torch.nn.Module, list[str]]:
    """A copy whose top ``n_top`` parameterized layers (-1 = all, 0 = none) are re-initialized."""
    rnd = copy.deepcopy(module)
    layers = [(n, m) for n, m in rnd.named_modules()
              if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    chosen = layers[::-1][: len(layers) if n_top < 0 else n_top]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed + 7919)
    for _, m in chosen:
        m.reset_parameters()
    torch.random.set_rng_state(gen_state)
    return rnd.eval(), [n for n, _ in chosen]


@register_analyzer
class Attribution(Analyzer):
    name = "attribution"
    title = "Attribution maps"
    description = ("Which input pixels drive a class score: Integrated Gradients, Saliency, Input x "
                   "Gradient, Grad-CAM and Occlusion (captum), with IG completeness and a "
                   "model-randomization sanity check.")
    paper = "Sundararajan et al. 2017; Selvaraju et al. 2017; Adebayo et al. 2018"
    Config = AttributionConfig
    result_class = AttributionResult
    supports = ("image2d",)
    mutates_model = False

    def run(self, model, data, config, ctx):
        methods = [m.strip() for m in config.method.split(",")]
        module, card, x = model.module, model.card, data.x
        ctx.progress(0.02, "forward pass")
        with torch.no_grad():
            logits = ctx.batched(module, x, stop=0.05, label="forward")
        probs = torch.softmax(logits.float(), 1)
        if config.target >= logits.shape[1]:
            raise ConfigError(f"target {config.target} is not a class of {card.id} (0..{logits.shape[1] - 1})")
        target = probs.argmax(1) if config.target < 0 else torch.full_like(probs[:, 0], config.target).long()
        baseline = torch.zeros_like(x) if config.baseline == "zero" else _blur(x)
        layer_name, layer = _gradcam_layer(module, card, config.gradcam_layer) \
            if "grad_cam" in methods else ("", None)
        side = x.shape[-1]
        window = config.occlusion_window or max(2, side // 8)
        stride = config.occlusion_stride or max(1, window // 2)
        maps, metrics, checks = {}, {}, []
        span = 0.9 / (len(methods) * (2 if config.sanity_check else 1))
        pos = 0.05
        idx = torch.arange(x.shape[0], device=x.device)
        for m in methods:
            watched = ctx.watch(module, _expected_calls(m, x, config, window, stride), start=pos, stop=pos + span,
                                label=m.replace("_", " "))
            maps[m] = ctx.batched(lambda i, m=m, w=watched: _attribute(m, w, layer, x[i], target[i], baseline[i],
                                                                        config, window, stride),
                                  idx, report=False)
            pos += span
        arrays = {"input_display": data.display, "target": target.cpu().numpy(),
                  "probs": probs.detach().cpu().numpy()}
        arrays.update({f"attr_{m}": v.cpu().numpy() for m, v in maps.items()})
        if "integrated_gradients" in maps:
            gap = self._completeness(module, x, baseline, target, maps["integrated_gradients"])
            arrays["completeness_gap"] = gap
            metrics["completeness_gap"] = float(gap.max())
            checks.append(Check("ig_completeness", bool(gap.max() < GAP_THRESHOLD), float(gap.max()),
                                GAP_THRESHOLD, f"|sum IG - (f(x) - f(baseline))| / |f(x)| with "
                                               f"{config.n_steps} steps"))
        if config.sanity_check:
            self._sanity(model, x, target, baseline, config, methods, maps, layer_name, window, stride,
                         ctx, pos, span, arrays, metrics, checks)
        top = probs[0].argsort(descending=True)[:5].tolist()
        metrics.update(predicted_class=float(probs[0].argmax()), predicted_prob=float(probs[0].max()),
                       target_class=float(target[0]), target_prob=float(probs[0, target[0]]))
        names = list(card.class_names)
        info = {"methods": methods, "gradcam_layer": layer_name, "ids": data.ids,
                "class_names_top5": [[names[int(j)] if int(j) < len(names) else str(int(j))
                                      for j in probs[i].argsort(descending=True)[:5]] for i in range(len(probs))],
                "target_names": [names[int(t)] if int(t) < len(names) else str(int(t)) for t in target],
                "top5": top, "trained": bool(card.trained), "labels": data.labels}
        return AttributionResult("attribution", metrics=metrics, checks=checks, arrays=arrays, info=info)

    @staticmethod
    def _completeness(module, x, baseline, target, ig: torch.Tensor) -> np.ndarray:
        """Per image |sum(IG) - (f(x) - f(b))| / |f(x)| for the explained logit."""
        with torch.no_grad():
            fx = module(x).gather(1, target[:, None])[:, 0].double()
            fb = module(baseline).gather(1, target[:, None])[:, 0].double()
        total = ig.double().flatten(1).sum(1)
        return (torch.abs(total - (fx - fb)) / fx.abs().clamp_min(1e-12)).cpu().numpy()

    @staticmethod
    def _sanity(model, x, target, baseline, config, methods, maps, layer_name, window, stride,
                ctx, pos, span, arrays, metrics, checks) -> None:
        """Adebayo et al.: re-initialize the top layers; the map must change (Spearman |.| < 0.5)."""
        rnd, names = randomized_copy(model.module, config.randomize_layers, ctx.seed)
        rlayer = dict(rnd.named_modules()).get(layer_name) if layer_name else None
        idx = torch.arange(x.shape[0], device=x.device)
        for m in methods:
            watched = ctx.watch(rnd, _expected_calls(m, x, config, window, stride), start=pos, stop=pos + span,
                                label=f"randomized {m.replace('_', ' ')}")
            r = ctx.batched(lambda i, m=m, w=watched: _attribute(m, w, rlayer, x[i], target[i], baseline[i], config,
                                                                  window, stride),
                            idx, report=False)
            pos += span
            r = r.cpu().numpy()
            rho = float(np.mean([_spearman(a, b) for a, b in zip(maps[m].cpu().numpy(), r, strict=True)]))
            arrays[f"rand_{m}"] = r
            metrics[f"sanity_rank_corr_{m}"] = rho
            checks.append(Check(f"randomization_{m}", rho < RHO_THRESHOLD, rho, RHO_THRESHOLD,
                                f"Spearman rank correlation of |map| after re-initializing {len(names)} "
                                f"layer(s) from the top; a map that survives randomization does not "
                                f"depend on what the model learned"))
        metrics["randomized_layers"] = float(len(names))
