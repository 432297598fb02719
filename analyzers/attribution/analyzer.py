"""Attribution maps with captum: Integrated Gradients, Saliency, Input x Gradient,
Grad-CAM and Occlusion, with IG's completeness gap and Adebayo et al.'s
model-randomization sanity check.

References: Sundararajan et al. 2017 (IG, completeness); Simonyan et al. 2014 (saliency);
Selvaraju et al. 2017 (Grad-CAM); Zeiler & Fergus 2014 (occlusion); Adebayo et al. 2018
(sanity checks: cascading randomization from the top layer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from analyzers._shared.findings import Findings
from analyzers._shared.quality_panel import quality_panel
from analyzers._shared.randomization import randomized_copy
from analyzers._shared.stats import mean_spearman_abs
from analyzers.attribution.ig_steps import GAP_THRESHOLD, search_steps
from analyzers.attribution.methods import (
    IG_CHUNK,
    IMPLEMENTATIONS,
    PREDICTING,
    Recorder,
    Setup,
    attribute,
    expected_calls,
    predicted,
)
from analyzers.attribution.result import METHODS, AttributionResult
from analyzers.attribution.signal import gradcam_layer as _signal_gradcam_layer
from analyzers.attribution.signal import signal_info
from workbench.core import Analyzer, option, register_analyzer
from workbench.core.errors import ConfigError, UnsupportedModelError

RHO_THRESHOLD = 0.5
_attribute = attribute  # the name bench/run.py and older tests import
__all__ = ["IG_CHUNK", "IMPLEMENTATIONS", "Attribution", "AttributionConfig", "Setup", "_attribute"]


@dataclass(frozen=True)
class AttributionConfig:
    method: str = option("integrated_gradients,saliency,grad_cam",
                         "attribution methods, comma-separated", choices=METHODS, multi=True,
                         label="Methods")
    target: int = option(-1, "class to explain; -1 = the predicted class", min=-1, max=100000)
    n_steps: int = option(64, "Integrated Gradients path steps to start with (Gauss-Legendre); doubled per sample "
                               "while the completeness gap is over 1%, up to ig_max_steps", min=4, max=1024)
    ig_max_steps: int = option(512, "bound of IG's step doubling; at or below n_steps no doubling happens",
                               min=4, max=4096)
    baseline: str = option("zero", "IG/occlusion baseline in model-input space (blur: a box blur of the picture, "
                                   "or a moving average of the signal, over 1/8 of the input's side)",
                           choices=("zero", "blur"))
    gradcam_layer: str = option("", "module name for Grad-CAM; empty = the card's first layer of interest (signals: "
                                    "the first one whose output keeps a time axis, else the deepest such conv)")
    occlusion_window: int = option(0, "occlusion patch side in pixels (pictures) or window in samples (signals); "
                                      "0 = input side / 8", min=0, max=512)
    occlusion_stride: int = option(0, "occlusion stride in pixels or samples; 0 = window / 2", min=0, max=512)
    sanity_check: bool = option(True, "run the model-randomization sanity check (Adebayo et al.)")
    quality: bool = option(False, "quality panel: deletion/insertion AUC of every map against a random map, Gini "
                                  "sparseness and effective support (2 x (1/quality_step + 1) forwards per sample "
                                  "and map)", label="Quality panel")
    quality_step: float = option(0.05, "quality panel: fraction of the pixels (or samples) removed/inserted per step",
                                 min=0.01, max=0.5)
    quality_road: bool = option(False, "quality panel: add ROAD curves (Rong et al. 2022: removed pixels imputed "
                                       "from their neighbours plus noise, not set to a baseline; pictures only)")
    quality_randomization: bool = option(False, "quality panel: add eMPRT (Hedstrom et al. 2023, fully randomized "
                                                "model) and the random-logit test (Sixt et al. 2020); two more "
                                                "explanations per method and sample")
    randomize_layers: int = option(-1, "top parameterized layers to re-initialize, from the output down; "
                                       "-1 = all (full cascade), 0 = none (a control that must fail)",
                                   min=-1, max=1000)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """The "blur" baseline: a box blur of a picture (N, C, H, W), or a moving average of a signal (N, C, T), over
    1/8 of the last side (odd, at least 3)."""
    k = max(3, (x.shape[-1] // 8) | 1)
    pool = torch.nn.functional.avg_pool1d if x.dim() == 3 else torch.nn.functional.avg_pool2d
    return pool(x, k, stride=1, padding=k // 2, count_include_pad=False)


def _gradcam_layer(module: torch.nn.Module, card, name: str) -> tuple[str, torch.nn.Module]:
    mods = dict(module.named_modules())
    if not name:
        convs = [n for n, m in mods.items() if isinstance(m, torch.nn.Conv2d)]
        name = next((n for n in card.layers_of_interest if n in mods), convs[-1] if convs else "")
        if not name:
            raise UnsupportedModelError(f"{card.id} has no Conv2d layer for Grad-CAM",
                                        "drop grad_cam from method, or name a layer with gradcam_layer=NAME")
    if name not in mods or name == "":
        convs = [n for n, m in mods.items() if isinstance(m, torch.nn.Conv2d)][-4:]
        raise ConfigError(f"gradcam_layer {name!r} is not a module of {card.id}",
                          f"e.g. {', '.join(convs)}")
    return name, mods[name]


@dataclass
class Progress:
    """Where the next method's share of the progress bar starts (``pos``), how wide it is (``span``) and
    what its label starts with (``label``)."""

    pos: float
    span: float
    label: str = ""


def _all_maps(module, layer, methods: list[str], s: Setup, ctx, bar: Progress) -> dict:
    """method -> (N, H, W) float32 map for every method; advances ``bar`` by one span per method."""
    maps, idx = {}, torch.arange(s.x.shape[0], device=s.x.device)
    for m in methods:
        watched = ctx.watch(module, expected_calls(m, s), start=bar.pos, stop=bar.pos + bar.span,
                            label=f"{bar.label}{m.replace('_', ' ')}")
        maps[m] = ctx.batched(lambda i, m=m, w=watched: attribute(m, w, layer, s.span(i)), idx, report=False)
        bar.pos += bar.span
    return maps


def _predicting_map(module, layer, method: str, s: Setup, ctx, bar: Progress) -> tuple[torch.Tensor, torch.Tensor]:
    """``method`` (one of PREDICTING) on ``s`` whose target is None: the map (N, H, W) and the logits (N, K) of
    the method's own forward at the input, chunk by chunk (a method that made no such forward, e.g. a planted
    wrong one, gets a forward of its own)."""
    rec = Recorder(ctx.watch(module, expected_calls(method, s), start=bar.pos, stop=bar.pos + bar.span,
                             label=f"{bar.label}{method.replace('_', ' ')}"))
    logits = []

    def chunk(i):
        sub = s.span(i)
        rec.arm(sub.x)
        a = attribute(method, rec, layer, sub)
        out = rec.take()
        if out is None:
            with torch.no_grad():
                out = module(sub.x)
        logits.append(out)
        return a

    a = ctx.batched(chunk, torch.arange(s.x.shape[0], device=s.x.device), report=False)
    bar.pos += bar.span
    return a, torch.cat(logits)


def _first_pass(module, layer, methods: list[str], s: Setup, ctx, bar: Progress) -> tuple[dict, torch.Tensor]:
    """The logits (N, K) that name the target, and the maps already made on the way: the forward of the first
    method that makes one at the input (PREDICTING), else a forward of its own (IG and occlusion need the
    target before theirs). ``s.target`` is None here."""
    first = next((m for m in methods if m in PREDICTING), None)
    if first is None:
        ctx.progress(0.02, "forward pass")
        with torch.no_grad():
            return {}, ctx.batched(module, s.x, stop=0.05, label="forward")
    a, logits = _predicting_map(module, layer, first, s, ctx, bar)
    return {first: a}, logits


def _explainers(methods: list[str], layer_name: str, s: Setup, ig_steps, ctx) -> dict:
    """method -> ``fn(module, x, target) -> (N, H, W) map`` for eMPRT and the random-logit test: the same
    :func:`attribute` call as the shown map, on ``module`` (the trained model or eMPRT's randomized copy; Grad-CAM
    on that module's layer of the same name) for the classes ``target``. IG runs at the most path steps any sample
    needed (``ig_steps`` (N,) from the completeness search), so its map is as accurate as the shown one."""
    steps = int(max(ig_steps)) if ig_steps is not None else s.cfg.n_steps

    def make(method):
        def fn(module, x, target):
            layer = dict(module.named_modules()).get(layer_name) if layer_name else None
            base = s.baseline if x is s.x else torch.zeros_like(x) if s.cfg.baseline == "zero" else _blur(x)
            sub = replace(s.with_steps(steps), x=x, target=target.to(x.device), baseline=base)
            idx = torch.arange(x.shape[0], device=x.device)
            return ctx.batched(lambda i: attribute(method, module, layer, sub.span(i)), idx, report=False)

        return fn

    return {m: make(m) for m in methods}


@register_analyzer
class Attribution(Analyzer):
    name = "attribution"
    title = "Attribution maps"
    description = ("Which input pixels (or signal samples) drive a class score: Integrated Gradients, "
                   "Saliency, Input x Gradient, Grad-CAM and Occlusion (captum), with IG completeness and a "
                   "model-randomization sanity check.")
    paper = "Sundararajan et al. 2017; Selvaraju et al. 2017; Adebayo et al. 2018"
    Config = AttributionConfig
    result_class = AttributionResult
    supports = ("image2d", "signal1d")
    libraries = ("captum", "scipy")
    smoke_config = {"method": "integrated_gradients,saliency,grad_cam"}
    headline_check = None
    headline_reason = ("IG completeness is an axiom and the randomization checks compare with the analyzer's own "
                       "re-initialized copy: both hold for any weights")
    mutates_model = False
    per_sample = True  # a data id naming many samples runs in chunks, merged (workbench/runtime/dataset_run.py)
    aggregate = {"completeness_gap": "max", "ig_completeness": "max", "ig_steps_max": "max",
                 "predicted_*": "first", "target_*": "first", "randomized_layers": "first"}

    def run(self, model, data, config, ctx):
        methods = [m.strip() for m in config.method.split(",")]
        module, card, x = model.module, model.card, data.x
        gc_name = config.gradcam_layer
        if "grad_cam" in methods and x.dim() == 3:  # a signal: the deepest conv that keeps a time axis
            gc_name = _signal_gradcam_layer(module, card, gc_name, x)
        layer_name, layer = _gradcam_layer(module, card, gc_name) if "grad_cam" in methods else ("", None)
        window = config.occlusion_window or max(2, x.shape[-1] // 8)
        if "occlusion" in methods and window > min(x.shape[2:]):  # captum would fail with an AssertionError
            raise ConfigError(f"occlusion_window {window} is larger than the input "
                              f"({' x '.join(str(d) for d in x.shape[2:])})", f"use at most {min(x.shape[2:])}")
        setup = Setup(x, None, torch.zeros_like(x) if config.baseline == "zero" else _blur(x), config,
                      window, config.occlusion_stride or max(1, window // 2))
        bar = Progress(0.05, 0.9 / (len(methods) * (2 if config.sanity_check else 1)))
        # the prediction comes from the first forward the explanation makes at the input (issue 21: a separate
        # forward was the whole of Grad-CAM's excess over a hand-rolled pass)
        maps, logits = _first_pass(module, layer, methods, setup, ctx, bar)
        probs = torch.softmax(logits.float(), 1)
        if config.target >= logits.shape[1]:
            raise ConfigError(f"target {config.target} is not a class of {card.id} (0..{logits.shape[1] - 1})")
        target = predicted(logits) if config.target < 0 else torch.full_like(probs[:, 0], config.target).long()
        setup = replace(setup, target=target)
        maps.update(_all_maps(module, layer, [m for m in methods if m not in maps], setup, ctx, bar))
        maps = {m: maps[m] for m in methods}
        out = Findings(arrays={"input_display": data.display, "target": target.cpu().numpy(),
                               "probs": probs.detach().cpu().numpy()})
        out.arrays.update({f"attr_{m}": v.cpu().numpy() for m, v in maps.items()})
        if "integrated_gradients" in maps:
            out.merge(self._completeness(module, layer, setup, maps, ctx, logits))
        if config.quality:
            ctx.progress(bar.pos, "quality panel: deletion and insertion curves")
            out.merge(quality_panel(module, setup.x, maps, setup.target, setup.baseline, step=config.quality_step,
                                    seed=ctx.seed, rows_per_forward=max(16, ctx.batch_size),
                                    road=config.quality_road,
                                    explain=_explainers(methods, layer_name, setup, out.arrays.get("ig_steps"),
                                                        ctx) if config.quality_randomization else None))
        if config.sanity_check:
            out.merge(self._sanity(model.module, setup, maps, layer_name, ctx, bar))
        names = list(card.class_names)
        name = lambda j: names[int(j)] if int(j) < len(names) else str(int(j))  # noqa: E731
        out.metrics.update(predicted_class=float(probs[0].argmax()), predicted_prob=float(probs[0].max()),
                           target_class=float(target[0]), target_prob=float(probs[0, target[0]]))
        out.info.update(methods=methods, gradcam_layer=layer_name, ids=data.ids, labels=data.labels,
                        class_names_top5=[[name(j) for j in p.argsort(descending=True)[:5]] for p in probs],
                        target_names=[name(t) for t in target], trained=bool(card.trained),
                        top5=probs[0].argsort(descending=True)[:5].tolist())
        if x.dim() == 3:
            out.info.update(signal_info(card, target, probs.argmax(1)))
        return out.result(AttributionResult, "attribution")

    @staticmethod
    def _completeness(module, layer, s: Setup, maps: dict, ctx, logits: torch.Tensor) -> Findings:
        """IG's completeness gap per sample, with the step doubling of ig_steps.py; replaces maps' IG map by
        the one at the steps each sample needed. ``logits`` (N, K): f(x), already computed."""
        found = search_steps(module, layer, s, maps["integrated_gradients"], ctx, s.cfg.ig_max_steps,
                             fx=logits.gather(1, s.target[:, None])[:, 0])
        maps["integrated_gradients"] = found.ig
        gap, ok = found.gap, found.gap < GAP_THRESHOLD
        out = Findings(arrays={"attr_integrated_gradients": found.ig.cpu().numpy(), "completeness_gap": gap,
                               "completeness_ok": ok, "ig_steps": found.steps},  # per sample: data sets count
                       metrics={"completeness_gap": float(gap.max()), "completeness_ok_fraction": float(ok.mean()),
                                "ig_steps_max": float(found.steps.max())},
                       info={"ig_step_schedule": found.schedule})
        out.check("ig_completeness", gap.max() < GAP_THRESHOLD, float(gap.max()), GAP_THRESHOLD,
                  found.describe(s.cfg.ig_max_steps))
        return out

    @staticmethod
    def _sanity(module, s: Setup, maps: dict, layer_name: str, ctx, bar: Progress) -> Findings:
        """Adebayo et al.: re-initialize the top layers; the map must change (Spearman |.| < 0.5)."""
        rnd = randomized_copy(module, s.cfg.randomize_layers, ctx.seed)
        rlayer = dict(rnd.module.named_modules()).get(layer_name) if layer_name else None
        bar.label = "randomized "
        rand = _all_maps(rnd.module, rlayer, list(maps), s, ctx, bar)
        out = Findings(metrics={"randomized_layers": float(rnd.n_layers)},
                       info={"randomized_layer_names": rnd.layers})
        for m, r in rand.items():
            r = r.cpu().numpy()
            rho = mean_spearman_abs(maps[m].cpu().numpy(), r)
            out.arrays[f"rand_{m}"] = r
            out.metrics[f"sanity_rank_corr_{m}"] = rho
            out.check(f"randomization_{m}", rho < RHO_THRESHOLD, rho, RHO_THRESHOLD,
                      f"Spearman rank correlation of |map| after re-initializing {rnd.n_layers} layer(s) from "
                      "the top; a map that survives randomization does not depend on what the model learned")
        return out
