"""EEG saliency: Cui et al.'s interpretable CNN explained by its own CAM variant, LRP and Integrated
Gradients, checked against planted ground truth, with a randomization control, a frequency view,
the BatchNorm trap made visible, and the leave-one-subject-out protocol as an option.

References: Cui, Lan, Sourina & Mueller-Wittig, IEEE TNNLS 2023 (network, CAM variant, LOSO);
Bach et al. 2015 (LRP, via zennit); Sundararajan et al. 2017 (IG, via captum); Adebayo et al. 2018
(model-randomization sanity check).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from analyzers._shared.findings import Findings
from analyzers.eeg_saliency import generic as gm
from analyzers.eeg_saliency import maps as em
from analyzers.eeg_saliency import truth as tr
from analyzers.eeg_saliency.localization import READOUTS
from analyzers.eeg_saliency.loso_sweep import merge_call, protocol_findings, split_call
from analyzers.eeg_saliency.quality import quality as _quality
from analyzers.eeg_saliency.result import METHODS, EegSaliencyResult
from analyzers.eeg_saliency.scores import bn_trap, select_windows, truth_for
from analyzers.eeg_saliency.sheet_layout import is_sheet
from analyzers.eeg_saliency.topo import topomaps
from workbench.core import Analyzer, option, register_analyzer
from workbench.core.errors import ConfigError

_LOSO_LAST: dict = {}  # the last protocol's result (one entry), keyed by run, card, data id and plan
_LOSO_LOCK = threading.Lock()
BATCH_SHIFT_TOL = 1e-4


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
    lrp_epsilon: float = option(0.25, "LRP-epsilon on the convolutions, as a multiple of the RMS of each layer's "
                                "output per window (Montavon et al. 2019: about 0.25 std); 0 = LRP-0, which on "
                                "this ReLU network is exactly Gradient x Input", min=0.0, max=10.0)
    explain: str = option("contrast", "what LRP and IG explain: the predicted class's logit minus the other "
                          "logit (what the softmax decision depends on) or the raw logit (adds a part common to "
                          "both classes that changes no prediction)", choices=("contrast", "logit"))
    readout: str = option("positive", "localization scores read: the positive relevance (evidence for the class, "
                          "as Arras et al. 2022 / Quantus), |relevance|, or the signed map smoothed over time "
                          "with the CAM variant's Gaussian, then its positive part", choices=READOUTS)
    random_draws: int = option(3, "randomization control: seeded re-initializations averaged", min=1, max=20)
    randomize_layers: int = option(-1, "layers re-initialized for the control, from the output down; "
                                       "-1 = all, 0 = none (a control that must fail)", min=-1, max=10)
    dilate: int = option(16, "pointing game: tolerance around the bursts in samples", min=0, max=192)
    window: int = option(-1, "window shown in detail (index in the analysed set; over a data set of several "
                             "chunks the view comes from the first 128 windows); -1 = the first correctly "
                             "classified drowsy window", min=-1, max=100000)
    max_windows: int = option(256, "at most this many windows analysed (evenly spread; over a data set, per "
                                   "chunk of 128)", min=1, max=5000)
    variants: bool = option(False, "also score every LRP / IG variant of issue 17 (rules, epsilon, baselines, "
                                   "explained output, readouts; trained and randomized model): about 30 s per 40 "
                                   "drowsy windows on a CPU")
    loso: bool = option(False, "also run the leave-one-subject-out protocol (trains one model per subject)")
    loso_epochs: int = option(0, "LOSO epochs per fold; 0 = the card's recipe (11, as the paper)", min=0, max=200)
    loso_lr: float = option(0.0, "LOSO Adam learning rate; 0 = the card's recipe (1e-3)", min=0.0, max=1.0)
    loso_folds: int = option(0, "LOSO: hold out only the first K subjects; 0 = all", min=0, max=1000)
    cam_layer: str = option("", "networks other than Cui et al.'s: the Grad-CAM layer (module name); empty = the "
                                "deepest convolution that keeps a time axis")
    quality: bool = option(False, "quality panel on every map: deletion/insertion AUC against a random map, Gini "
                                  "sparseness and effective support (2 x (1/quality_step + 1) forwards per window "
                                  "and map)", label="Quality panel")
    quality_step: float = option(0.05, "quality panel: fraction of the channel x time samples removed/inserted per "
                                       "step (set to zero, the IG baseline)", min=0.01, max=0.5)
    quality_randomization: bool = option(False, "quality panel: add eMPRT (Hedstrom et al. 2023, fully randomized "
                                                "model) and the random-logit test (Sixt et al. 2020, another class) "
                                                "for every map: two more explanations per window and map")


@dataclass
class Windows:
    """The analysed windows and the model's forward pass on them: ``x`` (n, 30, T) float32 model input,
    ``scale``/``shift`` (32,) the BatchNorm affine used (frozen or batch statistics), ``z``/``a`` the
    forward parts of :func:`maps.forward_parts`, ``target`` (n,) int64 the predicted classes, ``probs``
    (n, classes) float32 their probabilities; ``sel`` the
    selection of :func:`scores.select_windows`."""

    module: nn.Module
    card: object
    sel: dict
    x: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor
    z: torch.Tensor | None
    a: torch.Tensor | None
    target: torch.Tensor
    probs: torch.Tensor
    config: EegSaliencyConfig
    ctx: object
    cui: bool = True  # Cui et al.'s layout (its CAM variant, BatchNorm trap, filters); else analyzers/.../generic.py
    cam_layer: str = ""  # generic networks: the Grad-CAM layer

    @property
    def pred(self) -> np.ndarray:
        return self.target.cpu().numpy()

    @property
    def sfreq(self) -> float:
        return float(self.card.sampling_rate or 128.0)


def _shown(config, sel: dict, data) -> int:
    """The analysed-window index shown in detail (-1: the default). Over a data set the ``window`` option counts
    in the whole set: the chunk that holds it shows it, the others their default (the merge keeps the first
    chunk's view). ConfigError when it is past the set."""
    ids_all = [s.id for s in sel["samples_all"]]
    chunk = len(ids_all) > len(data.ids) and data.ids[0] in ids_all
    n = len(ids_all) if chunk else len(sel["index"])
    if config.window >= n:
        raise ConfigError(f"window {config.window} is past the {n} analysed windows",
                          f"use 0..{n - 1}, or -1 for the first correctly classified drowsy one")
    if config.window < 0 or not chunk:
        return config.window
    hit = np.flatnonzero(sel["index"] == config.window - ids_all.index(data.ids[0]))
    return int(hit[0]) if hit.size else -1


def _windows(model, data, config, ctx) -> Windows:
    module, card = model.module, model.card
    sel = select_windows(data, config.max_windows)
    sel["show"] = _shown(config, sel, data)
    x = data.x[torch.as_tensor(sel["index"], device=data.x.device)]
    ctx.progress(0.02, "forward pass")
    if not em.is_layout(module):
        with torch.no_grad():
            probs = torch.softmax(module(x), 1)
        return Windows(module, card, sel, x, None, None, None, None, probs.argmax(1), probs, config, ctx, cui=False)
    scale, shift = em.bn_affine(module, x, config.bn_mode)
    z, a, logits = em.forward_parts(module, x, scale, shift)
    probs = torch.softmax(logits, 1)
    return Windows(module, card, sel, x, scale, shift, z, a, probs.argmax(1), probs, config, ctx)


@register_analyzer
class EegSaliency(Analyzer):
    name = "eeg_saliency"
    title = "EEG saliency"
    description = ("Where and at which frequencies an EEG network finds its evidence (channel x time): Cui et al.'s "
                   "CAM variant on their compact network (Grad-CAM on any other, e.g. braindecode's EEGNet), LRP and "
                   "Integrated Gradients on the same windows, scored against planted alpha bursts where the data "
                   "has them, with a randomization control, an optional quality panel (deletion/insertion), band "
                   "relevance, scalp topomaps, and on Cui's network its filters, the BatchNorm trap and LOSO. On "
                   "ICLabel (iclabel.mne, ICA components of a recording): which scalp regions, frequencies and lags "
                   "drove its label.")
    paper = "Cui et al., IEEE TNNLS 2023; Adebayo et al. 2018"
    Config = EegSaliencyConfig
    result_class = EegSaliencyResult
    page = "eeg_saliency.py"  # hand-written page: recording upload, subject and labelled window pickers
    supports = ("eeg",)  # any EEG network on (N, C, T) windows; Cui et al.'s layout adds its own CAM and BN trap
    exclusive = True  # LRP on other networks traces them with torch.fx (process-global patching)
    libraries = ("captum", "matplotlib", "mne", "scipy", "zennit")  # matplotlib: MNE draws the topomaps off-screen
    smoke_config = {"methods": "cam", "max_windows": 64, "random_draws": 1}
    headline_check = "saliency_mass_in_bursts"  # a random model does not find the planted bursts
    mutates_model = False
    per_sample = True  # a data id naming many windows runs in chunks, merged (workbench/runtime/dataset_run.py)
    sample_arrays = ("probs", "pred", "labels", "subjects", "index", "evaluated", "burst_fraction", "scores_*",
                     "random_scores_*", "band_relevance", "bn_*_prob", "variant_scores", "ids", "quality_deletion_*",
                     "quality_insertion_*", "quality_gini_*", "quality_support_*", "quality_emprt_*",
                     "quality_entropy_*", "quality_logit_*", "ic_*")  # ic_*: ICLabel sheets (iclabel_run.py)
    aggregate = {"n_windows": "sum", "n_evaluated": "sum", "bn_trap_max_prob_shift": "max",
                 "bn_frozen_max_prob_shift": "max", "batch_independent_predictions": "max",
                 "ig_completeness_gap": "max", "loso_*": "first", "filter_*": "first", "show_*": "first",
                 "topo_*": "first", "random_*_example": "first", "channel_relevance_*": "first",
                 "band_relevance_by_class": "first", "cam_*": "first", "*randomization_rank_corr": "max",
                 "quality_fractions": "first", "quality_nonfinite_*": "sum", "lrp_conservation_min": "min",
                 "lrp_conservation_max": "max", "ig_completeness_gap_max": "max", "iclabel_*": "first"}

    # `workbench sweep eeg_saliency --split`: the call with loso off as one cell, plus one cell per held-out
    # subject with loso on; merged into the single call's result (analyzers/eeg_saliency/loso_sweep.py)
    @classmethod
    def split(cls, config: dict, seed: int, model: str, data: str | None) -> list[dict] | None:
        return split_call(config, seed, model, data)

    @classmethod
    def merge(cls, config: dict, seed: int, parts: list) -> EegSaliencyResult:
        return merge_call(config, seed, parts)

    @classmethod
    def accepts(cls, card) -> bool:  # also ICLabel's feature sheets (kind image2d; analyzers/eeg_saliency/iclabel_*.py)
        return super().accepts(card) or is_sheet(card)

    def run(self, model, data, config, ctx):
        if is_sheet(model.card):
            from analyzers.eeg_saliency.iclabel_run import run_sheet

            return run_sheet(self.name, model, data, config, ctx, EegSaliencyResult)
        methods = [m.strip() for m in config.methods.split(",")]
        w = _windows(model, data, config, ctx)
        if not w.cui and (config.variants or config.loso):
            raise ConfigError("the variant table and the LOSO protocol are defined on Cui et al.'s layout only",
                              "use eeg_compact.synth, or turn variants and loso off")
        card, sel, pred = w.card, w.sel, w.pred
        out = Findings(metrics={"n_windows": float(len(w.x))},
                       arrays={"probs": w.probs.cpu().numpy(), "pred": pred, "labels": sel["labels"],
                               "subjects": sel["subjects"], "index": sel["index"]},
                       info={"ids": sel["ids"], "methods": methods, "bn_mode": config.bn_mode})
        if w.cui:
            out.merge(_bn_trap(w))
        maps, grads = _maps(w, methods, out) if w.cui else gm.maps(w, methods, out)
        mapper = None if w.cui else gm.random_mapper(w)
        truth = truth_for(sel, pred, card)
        out.info["has_truth"] = truth is not None
        if config.quality:
            out.merge(_quality(w, maps))
        if truth is None:
            shown = pred == len(card.class_names) - 1  # the window _display will show, for the random example
            k = sel["show"] if sel["show"] >= 0 else int(np.flatnonzero(shown)[0]) if shown.any() else 0
            out.merge(tr.rank_randomization(w, maps, mapper, example=k))
        else:
            out.merge(tr.localization(w, maps, truth))
            if truth["evaluated"].any():
                scored = {m: out.arrays[f"scores_{m}"] for m in maps}
                out.merge(tr.randomization(w, list(maps), scored, truth, mapper))
            if config.variants:
                out.merge(_variants(w, truth))
        out.merge(_frequency(w, truth, grads))
        focus = truth["evaluated"] if truth is not None else (pred == len(card.class_names) - 1)
        out.merge(_display(w, data, maps, focus, truth))
        out.merge(Findings(arrays=topomaps(maps, focus, _channels(card, sel, w.x.shape[1]))))
        if config.loso:
            out.merge(_loso(w, data))
        labelled = sel["labels"] >= 0
        if labelled.any():
            out.metrics["accuracy"] = float((pred[labelled] == sel["labels"][labelled]).mean())
        out.info.update(class_names=list(card.class_names), channels=list(_channels(card, sel, w.x.shape[1])) or
                        [f"ch{i}" for i in range(w.x.shape[1])], sfreq=w.sfreq, trained=bool(card.trained),
                        layout="cui" if w.cui else "generic", architecture=str(card.architecture or ""))
        return out.result(EegSaliencyResult, self.name)


# -- pieces: each returns what it adds to the result ------------------------------------------------
def _bn_trap(w: Windows) -> Findings:
    trap, mode = bn_trap(w.module, w.x), w.config.bn_mode
    out = Findings(arrays={"bn_batch_prob": trap["batch"], "bn_alone_prob": trap["alone"],
                           "bn_frozen_prob": trap["frozen"]},
                   metrics={"bn_trap_flip_rate": trap["flip_rate"], "bn_trap_max_prob_shift": trap["max_shift"],
                            "bn_frozen_max_prob_shift": trap["frozen_shift"]})
    used = trap["frozen_shift"] if mode == "frozen" else trap["max_shift"]
    out.check("batch_independent_predictions", used <= BATCH_SHIFT_TOL, used, BATCH_SHIFT_TOL,
              f"largest change of P(drowsy) when a window is analysed alone instead of in its batch, "
              f"with {mode} BatchNorm statistics (the paper's batch statistics make "
              f"predictions and maps depend on the other windows in the batch)")
    return out


def _maps(w: Windows, methods: list[str], out: Findings) -> tuple[dict, torch.Tensor | None]:
    """method -> (n, 30, T) float32 map; also IG's path-averaged gradients (n, 30, T) for the frequency view
    (None without IG). Conservation and completeness figures go into ``out.metrics``."""
    cfg, ctx, x, target = w.config, w.ctx, w.x, w.target
    maps, grads, idx = {}, None, torch.arange(len(x), device=x.device)
    if "cam" in methods:
        maps["cam"] = ctx.batched(lambda i: em.cam_heatmap(w.module, x[i], w.z[i], w.a[i], target[i], cfg.top_n,
                                                           cfg.radius), idx, start=0.05, stop=0.12, label="CAM")
    canon = em.canonical_model(w.module, w.scale, w.shift, contrast=cfg.explain == "contrast")
    if "lrp" in methods:
        maps["lrp"] = ctx.batched(lambda i: em.lrp_maps(canon, x[i], target[i], cfg.lrp_epsilon, relative=True), idx,
                                  start=0.12, stop=0.25, label="LRP")
        with torch.no_grad():
            logit = canon(x).gather(1, target[:, None])[:, 0]
        out.metrics["lrp_conservation"] = float((maps["lrp"].sum((1, 2)) / logit).median())
    if "ig" in methods:
        bs = max(1, min(ctx.batch_size, len(x)))
        per_chunk = -(-bs * cfg.ig_steps // max(bs, min(bs * cfg.ig_steps, em.IG_CHUNK)))
        watched = ctx.watch(canon, -(-len(x) // bs) * per_chunk, start=0.25, stop=0.55, label="Integrated Gradients")
        grads = ctx.batched(lambda i: em.ig_gradients(watched, x[i], target[i], cfg.ig_steps), idx, report=False)
        maps["ig"] = x * grads
        with torch.no_grad():
            diff = (canon(x) - canon(torch.zeros_like(x))).gather(1, target[:, None])[:, 0]
        gap = (maps["ig"].sum((1, 2)) - diff).abs() / diff.abs().clamp_min(1e-6)
        out.metrics["ig_completeness_gap"] = float(gap.median())
    return {k: v.cpu().numpy() for k, v in maps.items()}, grads


def _variants(w: Windows, truth: dict) -> Findings:
    """Every LRP / IG variant scored on the evaluated windows (analyzers/eeg_saliency/variants.py); per window,
    zeros for the others, so a data-set run concatenates them."""
    from analyzers.eeg_saliency.variants import VARIANTS, variant_scores

    ev = truth["evaluated"]
    keep = torch.as_tensor(ev, device=w.x.device)
    s = variant_scores(w, w.x[keep], w.target[keep], truth["mask"][ev], truth["posterior"])
    full = np.zeros((len(ev), *s.shape[1:]), np.float32)
    full[ev] = s
    return Findings(arrays={"variant_scores": full}, info={"variants": list(VARIANTS)})


def _frequency(w: Windows, truth: dict | None, grads: torch.Tensor | None) -> Findings:
    """Learned filter responses, and IG relevance by EEG band (with IG's gradients ``grads``)."""
    from workbench.data.eeg_synth import BANDS

    out = Findings(info={"bands": [f"{b} {lo:g}-{hi:g} Hz" for b, (lo, hi) in BANDS.items()] + ["rest"]})
    if w.cui:
        out.merge(_filters(w, BANDS["alpha"]))
    if grads is None:
        return out
    rel = em.band_relevance(w.x.cpu().numpy(), grads.cpu().numpy(), w.sfreq, BANDS)
    names, pred = w.card.class_names, w.pred
    by_class = np.stack([rel[pred == c].mean(0) if (pred == c).any() else np.zeros(rel.shape[1])
                         for c in range(len(names))]).astype(np.float32)
    out.arrays.update(band_relevance=rel, band_relevance_by_class=by_class)
    for name, v in zip(list(BANDS), by_class[len(names) - 1], strict=False):  # the drowsy (last) class
        out.metrics[f"band_relevance_{name}"] = float(v)
    if truth is not None and truth["evaluated"].any():
        mean = rel[truth["evaluated"]].mean(0)[: len(BANDS)]
        top = list(BANDS)[int(np.argmax(mean))]
        out.check("alpha_band_dominates", top == "alpha", float(mean[list(BANDS).index("alpha")]), None,
                  f"IG relevance by band on the evaluated drowsy windows peaks in {top}; the "
                  f"planted evidence is alpha (8-12 Hz)")
    return out


def _filters(w: Windows, alpha: tuple) -> Findings:
    """Cui et al.'s depthwise temporal filters: frequency responses and the alpha share of the drowsy evidence."""
    freqs, gain, contrast = em.filter_responses(w.module, w.scale, w.sfreq)
    out = Findings(arrays={"filter_freqs": freqs, "filter_gain": gain, "filter_contrast": contrast})
    band = (freqs >= 1.0) & (freqs <= 40.0)
    peaks = freqs[band][gain[:, band].argmax(1)]
    out.arrays["filter_peak_hz"] = peaks.astype(np.float32)
    pos = contrast > 0
    if pos.any():
        hit = pos & (peaks >= alpha[0]) & (peaks <= alpha[1])
        out.metrics["filter_alpha_share"] = float(contrast[hit].sum() / contrast[pos].sum())
    return out


def _channels(card, sel: dict, n: int) -> tuple[str, ...]:
    """The ``n`` channel names: the card's, else those the data's samples carry (e.g. the Emotiv recording's);
    () when neither has ``n`` names."""
    names = tuple(card.extra.get("channels", ())) or tuple(sel.get("channels", ()))
    return names if len(names) == n else ()


def _display(w: Windows, data, maps: dict, focus: np.ndarray, truth: dict | None) -> Findings:
    """The window shown in detail: its signal, every map and the planted mask."""
    sel = w.sel
    k = sel["show"] if sel["show"] >= 0 else int(np.flatnonzero(focus)[0]) if focus.any() else 0
    out = Findings(arrays={"show_signal": data.display[sel["index"][k]]},
                   info={"window": k, "window_id": sel["ids"][k]})
    out.arrays.update({f"show_{m}": arr[k] for m, arr in maps.items()})
    out.arrays["show_mask"] = truth["mask"][k] if truth is not None else \
        np.zeros(out.arrays["show_signal"].shape, bool)
    return out


def _loso(w: Windows, data) -> Findings:
    from analyzers.eeg_saliency.loso import LosoPlan, loso_data, run_loso

    cfg = w.config
    x, y, subj = loso_data(w.card, data.data_id, data.x, w.sel["samples_all"])
    plan = LosoPlan(cfg.loso_epochs, cfg.loso_lr, cfg.loso_folds, w.ctx.seed)
    key = (id(w.ctx.cancel), w.card.id, data.data_id, plan, len(y))  # the cancel token: one per run and its chunks
    with _LOSO_LOCK:
        res = _LOSO_LAST.get(key)
    if res is None:  # the chunks of a data-set run share one protocol: trained once, reused by the others
        res = run_loso(w.card, x, y, subj, plan, progress=w.ctx.sub(0.7, 0.99))
        with _LOSO_LOCK:
            _LOSO_LAST.clear()
            _LOSO_LAST[key] = res
    return protocol_findings(res, data.data_id)  # shared with the split call's merge (loso_sweep.merge_call)
