"""EEG saliency: Cui et al.'s interpretable CNN explained by its own CAM variant, LRP and Integrated
Gradients, checked against planted ground truth, with a randomization control, a frequency view,
the BatchNorm trap made visible, and the leave-one-subject-out protocol as an option.

References: Cui, Lan, Sourina & Mueller-Wittig, IEEE TNNLS 2023 (network, CAM variant, LOSO);
Bach et al. 2015 (LRP, via zennit); Sundararajan et al. 2017 (IG, via captum); Adebayo et al. 2018
(model-randomization sanity check).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from analyzers.eeg_saliency import maps as em
from analyzers.eeg_saliency.result import METHODS, EegSaliencyResult
from analyzers.eeg_saliency.scores import bn_trap, score_block, select_windows, truth_for
from workbench.core import Analyzer, Check, option, register_analyzer
from workbench.core.errors import ConfigError

MASS_TARGET, POSTERIOR_TARGET, POINTING_TARGET = 0.8, 0.9, 0.9
CHANCE_MARGIN = 0.2  # the randomized model's mass must come back to within this of chance
LOSO_TARGET = 0.85
BATCH_SHIFT_TOL = 1e-4
SCORE_KEYS = {"cam": ("saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game"),
              "lrp": ("lrp_mass_in_bursts", "lrp_posterior_share", "lrp_pointing_game"),
              "ig": ("ig_mass_in_bursts", "ig_posterior_share", "ig_pointing_game")}


@dataclass(frozen=True)
class EegSaliencyConfig:
    methods: str = option("cam,lrp,ig", "maps to compute: the paper's CAM variant, LRP (zennit), "
                          "Integrated Gradients (captum)", choices=METHODS, multi=True)
    bn_mode: str = option("frozen", "BatchNorm statistics: frozen population statistics (per-window, safe) "
                          "or the statistics of the analysed batch (the paper's test-time behaviour)",
                          choices=("frozen", "batch"))
    top_n: int = option(100, "CAM variant: strongest (map, time) entries kept per window", min=1, max=10000)
    radius: int = option(32, "CAM variant: Gaussian sigma and truncation radius in samples (32 = 0.25 s)",
                         min=1, max=192)
    ig_steps: int = option(16, "Integrated Gradients path steps (Gauss-Legendre)", min=2, max=512)
    lrp_epsilon: float = option(1e-6, "LRP epsilon stabilizer", min=0.0, max=10.0)
    random_draws: int = option(3, "randomization control: seeded re-initializations averaged", min=1, max=20)
    randomize_layers: int = option(-1, "layers re-initialized for the control, from the output down; "
                                       "-1 = all, 0 = none (a control that must fail)", min=-1, max=10)
    dilate: int = option(16, "pointing game: tolerance around the bursts in samples", min=0, max=192)
    window: int = option(-1, "window shown in detail (index in the analysed set); -1 = the first correctly "
                             "classified drowsy window", min=-1, max=100000)
    max_windows: int = option(256, "at most this many windows analysed (evenly spread)", min=1, max=5000)
    loso: bool = option(False, "also run the leave-one-subject-out protocol (trains one model per subject)")
    loso_epochs: int = option(0, "LOSO epochs per fold; 0 = the card's recipe (11, as the paper)", min=0, max=200)
    loso_lr: float = option(0.0, "LOSO Adam learning rate; 0 = the card's recipe (1e-3)", min=0.0, max=1.0)
    loso_folds: int = option(0, "LOSO: hold out only the first K subjects; 0 = all", min=0, max=1000)


def randomized_copy(module: torch.nn.Module, n_top: int, seed: int) -> torch.nn.Module:
    """A copy whose top ``n_top`` parameterized layers (-1 = all) are re-initialized with a fixed seed."""
    rnd = copy.deepcopy(module)
    layers = [m for m in rnd.modules() if hasattr(m, "reset_parameters")
              and any(True for _ in m.parameters(recurse=False))][::-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in layers[: len(layers) if n_top < 0 else n_top]:
            m.reset_parameters()
    return rnd.eval()


@register_analyzer
class EegSaliency(Analyzer):
    name = "eeg_saliency"
    title = "EEG saliency (interpretable CNN)"
    description = ("Where and at which frequencies Cui et al.'s compact EEG network finds drowsiness: its "
                   "CAM-variant heat map (channel x time), LRP and Integrated Gradients on the same windows, "
                   "scored against planted alpha bursts, with a randomization control, band relevance, "
                   "learned filter responses, the BatchNorm trap and leave-one-subject-out accuracy.")
    paper = "Cui et al., IEEE TNNLS 2023; Adebayo et al. 2018"
    Config = EegSaliencyConfig
    result_class = EegSaliencyResult
    supports = ("eeg",)
    mutates_model = False

    def run(self, model, data, config, ctx):
        module, card = model.module, model.card
        em.check_layout(module)
        methods = [m.strip() for m in config.methods.split(",")]
        sel = select_windows(data, config.max_windows)
        if config.window >= len(sel["index"]):
            raise ConfigError(f"window {config.window} is past the {len(sel['index'])} analysed windows",
                              f"use 0..{len(sel['index']) - 1}, or -1 for the first correctly classified drowsy one")
        x = data.x[torch.as_tensor(sel["index"], device=data.x.device)]
        sfreq = float(card.sampling_rate or 128.0)
        ctx.progress(0.02, "forward pass")
        scale, shift = em.bn_affine(module, x, config.bn_mode)
        z, a, logits = em.forward_parts(module, x, scale, shift)
        probs = torch.softmax(logits, 1)
        target = probs.argmax(1)
        pred = target.cpu().numpy()
        arrays = {"probs": probs.cpu().numpy(), "pred": pred, "labels": sel["labels"],
                  "subjects": sel["subjects"], "index": sel["index"]}
        metrics, checks, info = {"n_windows": float(len(x))}, [], {"ids": sel["ids"], "methods": methods,
                                                                   "bn_mode": config.bn_mode}
        self._bn_trap(module, x, config, metrics, checks, arrays)
        maps = self._maps(module, x, z, a, target, scale, shift, methods, config, ctx, metrics, arrays)
        truth = truth_for(sel, pred, card)
        info["has_truth"] = truth is not None
        if truth is not None:
            self._truth(module, x, target, (scale, shift), maps, truth, config, ctx, metrics, checks, arrays, info)
        self._frequency(module, x, scale, target, truth, sfreq, card, metrics, checks, arrays, info)
        focus = truth["evaluated"] if truth is not None else (pred == len(card.class_names) - 1)
        self._display(card, data, sel, maps, focus, truth, config, arrays, info)
        self._topomaps(maps, focus, card, arrays)
        if config.loso:
            self._loso(card, data, sel, config, ctx, metrics, checks, arrays)
        labelled = sel["labels"] >= 0
        if labelled.any():
            metrics["accuracy"] = float((pred[labelled] == sel["labels"][labelled]).mean())
        info.update(class_names=list(card.class_names), channels=list(card.extra.get("channels", ())) or
                    [f"ch{i}" for i in range(x.shape[1])], sfreq=sfreq, trained=bool(card.trained))
        return EegSaliencyResult(self.name, metrics=metrics, checks=checks, arrays=arrays, info=info)

    # -- pieces -----------------------------------------------------------------------------------
    @staticmethod
    def _bn_trap(module, x, config, metrics, checks, arrays) -> None:
        trap = bn_trap(module, x)
        arrays.update(bn_batch_prob=trap["batch"], bn_alone_prob=trap["alone"], bn_frozen_prob=trap["frozen"])
        metrics.update(bn_trap_flip_rate=trap["flip_rate"], bn_trap_max_prob_shift=trap["max_shift"],
                       bn_frozen_max_prob_shift=trap["frozen_shift"])
        used = trap["frozen_shift"] if config.bn_mode == "frozen" else trap["max_shift"]
        checks.append(Check("batch_independent_predictions", used <= BATCH_SHIFT_TOL, used, BATCH_SHIFT_TOL,
                            f"largest change of P(drowsy) when a window is analysed alone instead of in its batch, "
                            f"with {config.bn_mode} BatchNorm statistics (the paper's batch statistics make "
                            f"predictions and maps depend on the other windows in the batch)"))

    @staticmethod
    def _maps(module, x, z, a, target, scale, shift, methods, config, ctx, metrics, arrays) -> dict:
        maps, idx = {}, torch.arange(len(x), device=x.device)
        if "cam" in methods:
            maps["cam"] = ctx.batched(lambda i: em.cam_heatmap(module, x[i], z[i], a[i], target[i], config.top_n,
                                                               config.radius), idx, start=0.05, stop=0.12, label="CAM")
        canon = em.canonical_model(module, scale, shift)
        if "lrp" in methods:
            maps["lrp"] = ctx.batched(lambda i: em.lrp_maps(canon, x[i], target[i], config.lrp_epsilon), idx,
                                      start=0.12, stop=0.25, label="LRP")
            with torch.no_grad():
                logit = canon(x).gather(1, target[:, None])[:, 0]
            total = maps["lrp"].sum((1, 2))
            metrics["lrp_conservation"] = float((total / logit).median())
        if "ig" in methods:
            bs = max(1, min(ctx.batch_size, len(x)))
            per_chunk = -(-bs * config.ig_steps // max(bs, min(bs * config.ig_steps, em.IG_CHUNK)))
            watched = ctx.watch(canon, -(-len(x) // bs) * per_chunk, start=0.25, stop=0.55,
                                label="Integrated Gradients")
            grads = ctx.batched(lambda i: em.ig_gradients(watched, x[i], target[i], config.ig_steps), idx,
                                report=False)
            maps["ig"] = x * grads
            arrays["_ig_grads"] = grads  # consumed by the frequency view, not stored
            with torch.no_grad():
                diff = (canon(x) - canon(torch.zeros_like(x))).gather(1, target[:, None])[:, 0]
            gap = (maps["ig"].sum((1, 2)) - diff).abs() / diff.abs().clamp_min(1e-6)
            metrics["ig_completeness_gap"] = float(gap.median())
        return {k: v.cpu().numpy() for k, v in maps.items()}

    @staticmethod
    def _truth(module, x, target, affine, maps, truth, config, ctx, metrics, checks, arrays, info) -> None:
        ev = truth["evaluated"]
        metrics.update(n_evaluated=float(ev.sum()), chance_mass_in_bursts=truth["chance_mass"],
                       chance_posterior_share=truth["chance_posterior"])
        arrays["evaluated"] = ev
        if not ev.any():
            return
        for m, arr in maps.items():
            s = score_block(arr, truth["mask"], truth["posterior"], config.dilate)
            arrays[f"scores_{m}"] = s
            metrics.update(dict(zip(SCORE_KEYS[m], s[ev].mean(0).tolist(), strict=True)))
        if "cam" in maps:
            for key, goal in zip(SCORE_KEYS["cam"], (MASS_TARGET, POSTERIOR_TARGET, POINTING_TARGET), strict=True):
                checks.append(Check(key, metrics[key] >= goal, metrics[key], goal,
                                    f"CAM variant on {int(ev.sum())} correctly classified drowsy windows (chance: "
                                    f"mass {truth['chance_mass']:.2f}, posterior {truth['chance_posterior']:.2f})"))
        keep = torch.as_tensor(ev, device=x.device)
        info["random_example_window"] = int(np.flatnonzero(ev)[0])
        EegSaliency._controls(module, x[keep], target[keep], affine, truth["mask"][ev], truth, config, ctx, metrics,
                              checks, arrays)

    @staticmethod
    def _controls(module, x, target, affine, mask, truth, config, ctx, metrics, checks, arrays) -> None:
        """Adebayo et al.: the CAM variant of re-initialized models (BatchNorm with the statistics of these
        windows: a fresh model has no population statistics) and of the other class, on the evaluated
        windows x (n, 30, T); both should fall back to chance."""
        draws = []
        for k in range(config.random_draws):
            ctx.progress(0.55 + 0.1 * k / config.random_draws, f"randomization control {k + 1}/{config.random_draws}")
            rnd = randomized_copy(module, config.randomize_layers, ctx.seed + 7919 * (k + 1))
            sc, sh = em.bn_affine(rnd, x, "batch") if config.randomize_layers != 0 else affine
            z, a, _ = em.forward_parts(rnd, x, sc, sh)
            h = em.cam_heatmap(rnd, x, z, a, target, config.top_n, config.radius).cpu().numpy()
            draws.append(score_block(h, mask, truth["posterior"], config.dilate).mean(0))
            if k == 0:
                arrays["random_cam_example"] = h[0]
        r = np.mean(draws, axis=0)
        metrics.update(dict(zip(("randomized_mass_in_bursts", "randomized_posterior_share",
                                 "randomized_pointing_game"), r.tolist(), strict=True)))
        z, a, _ = em.forward_parts(module, x, *affine)
        other = em.cam_heatmap(module, x, z, a, 1 - target.clamp(max=1), config.top_n, config.radius).cpu().numpy()
        o = score_block(other, mask, truth["posterior"], config.dilate).mean(0)
        metrics.update(dict(zip(("other_class_mass_in_bursts", "other_class_posterior_share",
                                 "other_class_pointing_game"), o.tolist(), strict=True)))
        limit = truth["chance_mass"] + CHANCE_MARGIN
        checks.append(Check("randomization_falls_to_chance", bool(r[0] <= limit), float(r[0]), limit,
                            f"CAM mass in the bursts after re-initializing the model ({config.random_draws} draw(s)) "
                            f"must fall to chance ({truth['chance_mass']:.2f}) + {CHANCE_MARGIN}; a map that "
                            f"survives randomization does not depend on what the model learned"))

    @staticmethod
    def _frequency(module, x, scale, target, truth, sfreq, card, metrics, checks, arrays, info) -> None:
        from workbench.data.eeg_synth import BANDS

        freqs, gain, contrast = em.filter_responses(module, scale, sfreq)
        info["bands"] = [f"{b} {lo:g}-{hi:g} Hz" for b, (lo, hi) in BANDS.items()] + ["rest"]
        arrays.update(filter_freqs=freqs, filter_gain=gain, filter_contrast=contrast)
        lo, hi = BANDS["alpha"]
        band = (freqs >= 1.0) & (freqs <= 40.0)
        peaks = freqs[band][gain[:, band].argmax(1)]
        arrays["filter_peak_hz"] = peaks.astype(np.float32)
        pos = contrast > 0
        if pos.any():
            alpha = pos & (peaks >= lo) & (peaks <= hi)
            metrics["filter_alpha_share"] = float(contrast[alpha].sum() / contrast[pos].sum())
        grads = arrays.pop("_ig_grads", None)
        if grads is None:
            return
        rel = em.band_relevance(x.cpu().numpy(), grads.cpu().numpy(), sfreq, BANDS)
        arrays["band_relevance"] = rel
        drowsy = len(card.class_names) - 1
        groups = [(f"predicted {card.class_names[c]}", target.cpu().numpy() == c)
                  for c in range(len(card.class_names))]
        arrays["band_relevance_by_class"] = np.stack([rel[g].mean(0) if g.any() else np.zeros(rel.shape[1])
                                                      for _, g in groups]).astype(np.float32)
        for name, v in zip(list(BANDS), arrays["band_relevance_by_class"][drowsy], strict=False):
            metrics[f"band_relevance_{name}"] = float(v)
        if truth is not None and truth["evaluated"].any():
            mean = rel[truth["evaluated"]].mean(0)[: len(BANDS)]
            top = list(BANDS)[int(np.argmax(mean))]
            checks.append(Check("alpha_band_dominates", top == "alpha", float(mean[list(BANDS).index("alpha")]),
                                None, f"IG relevance by band on the evaluated drowsy windows peaks in {top}; the "
                                      f"planted evidence is alpha (8-12 Hz)"))

    @staticmethod
    def _display(card, data, sel, maps, focus, truth, config, arrays, info) -> None:
        w = config.window if config.window >= 0 else int(np.flatnonzero(focus)[0]) if focus.any() else 0
        arrays["show_signal"] = data.display[sel["index"][w]]
        for m, arr in maps.items():
            arrays[f"show_{m}"] = arr[w]
        arrays["show_mask"] = truth["mask"][w] if truth is not None else np.zeros(arrays["show_signal"].shape, bool)
        info["window"], info["window_id"] = w, sel["ids"][w]

    @staticmethod
    def _topomaps(maps, focus, card, arrays) -> None:
        from analyzers.eeg_saliency.topo import electrode_xy, interpolate

        channels = tuple(card.extra.get("channels", ()))
        if not channels:
            return
        use = focus if focus.any() else np.ones(len(focus), bool)
        xy = electrode_xy(channels)
        arrays["topo_xy"] = xy
        for m, arr in maps.items():
            mag = np.abs(arr[use]).sum(2)
            share = (mag / np.maximum(mag.sum(1, keepdims=True), 1e-30)).mean(0)
            arrays[f"channel_relevance_{m}"] = share.astype(np.float32)
            axis, grid, inside = interpolate(share, xy)
            arrays[f"topo_{m}"], arrays["topo_axis"], arrays["topo_inside"] = grid, axis, inside

    @staticmethod
    def _loso(card, data, sel, config, ctx, metrics, checks, arrays) -> None:
        from analyzers.eeg_saliency.loso import loso_data, run_loso

        x, y, subj = loso_data(card, data.data_id, data.x, sel["samples_all"])
        out = run_loso(card, x, y, subj, epochs=config.loso_epochs, lr=config.loso_lr, folds=config.loso_folds,
                       seed=ctx.seed, progress=ctx.sub(0.7, 0.99))
        arrays.update({f"loso_{k}": v for k, v in out.items()})
        acc = out["accuracy"]
        metrics.update(loso_mean_acc=float(acc.mean()), loso_std_acc=float(acc.std()), loso_min_acc=float(acc.min()),
                       loso_folds=float(len(acc)))
        if data.data_id.startswith("eeg_synth.drowsy"):
            checks.append(Check("loso_mean_accuracy", acc.mean() >= LOSO_TARGET, float(acc.mean()), LOSO_TARGET,
                                f"mean of per-subject accuracies over {len(acc)} held-out subject(s) on the "
                                f"synthetic set (paper, real data: 0.78)"))
