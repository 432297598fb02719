"""Every map judged the same way: localization against the planted bursts (mass in the bursts, share on the
posterior channels, pointing game) and the model-randomization control of Adebayo et al. 2018 (the shared
``analyzers._shared.randomization``), for the CAM variant, LRP and IG alike, with one threshold per check.

Thresholds (documented on the page and in each check's message):

* ``MASS_TARGET`` 0.8: at least 80% of the map's (positive) relevance inside the burst times; chance is the
  burst-time fraction (about 0.4 on the synthetic set); the paper's CAM variant reaches about 0.9.
* ``POSTERIOR_TARGET`` 0.9: the bursts sit on 8 of 30 channels (chance 0.27) with 95% of their power there.
* ``POINTING_TARGET`` 0.9: the map's maximum on a posterior channel inside the (dilated) burst times in at
  least 90% of the windows.
* ``MIN_DROP`` 0.2: re-drawing every weight must take at least 0.2 of the mass out of the bursts, half the
  distance from chance (about 0.4) to the 0.8 target; a map that keeps its localization without the
  learned weights shows the input's energy, not the model's evidence.
* ``CHANCE_MARGIN`` 0.2: the randomized model's mass must come back to within 0.2 of chance.
* ``RHO_THRESHOLD`` 0.5: without planted truth (a real recording) the control compares the maps themselves:
  the Spearman rank correlation of |map| between the trained and the re-initialized model (Adebayo et al.'s
  similarity) must stay below 0.5, the threshold the attribution and lrp analyzers use.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers._shared.randomization import randomized_copy
from analyzers._shared.stats import mean_spearman_abs
from analyzers.eeg_saliency import maps as em
from analyzers.eeg_saliency.localization import localize

MASS_TARGET, POSTERIOR_TARGET, POINTING_TARGET = 0.8, 0.9, 0.9
MIN_DROP = 0.2
CHANCE_MARGIN = 0.2
RHO_THRESHOLD = 0.5  # the attribution and lrp analyzers' threshold for the same control
PREFIX = {"cam": "", "lrp": "lrp_", "ig": "ig_"}
NAMES = {"cam": "CAM variant", "lrp": "LRP", "ig": "Integrated Gradients"}


def _name(w, m: str) -> str:
    """The method's name in check messages: on networks other than Cui et al.'s the CAM is Grad-CAM."""
    return "Grad-CAM" if m == "cam" and not getattr(w, "cui", True) else NAMES[m]


def keys(m: str) -> dict:
    """Metric / check names of method ``m`` (the CAM variant keeps its names from before issue 17)."""
    p = PREFIX[m]
    base = ("saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game") if m == "cam" else \
        (f"{m}_mass_in_bursts", f"{m}_posterior_share", f"{m}_pointing_game")
    return {"scores": base, "random": tuple(f"{p}randomized_{k}" for k in ("mass_in_bursts", "posterior_share",
                                                                            "pointing_game")),
            "drop": f"{p}randomization_drop", "falls": f"{p}randomization_falls_to_chance"}


def score(m: str, arr: np.ndarray, mask: np.ndarray, posterior: np.ndarray, config) -> np.ndarray:
    """(n, 3) localization of method ``m``'s maps under the run's readout (CAM: non-negative, smoothed)."""
    return localize(arr, mask, posterior, config.dilate, config.readout, config.radius, signed=m != "cam")


def localization(w, maps: dict, truth: dict) -> Findings:
    """Scores of every map on the correctly classified drowsy windows, and their checks."""
    ev, cfg = truth["evaluated"], w.config
    out = Findings(metrics={"n_evaluated": float(ev.sum()), "chance_mass_in_bursts": truth["chance_mass"],
                            "chance_posterior_share": truth["chance_posterior"]},
                   arrays={"evaluated": ev, "burst_fraction": truth["mask"].any(1).mean(1).astype(np.float32)},
                   info={"readout": cfg.readout})
    for m, arr in maps.items():  # every window (a data-set run concatenates them), scored where evaluated
        out.arrays[f"scores_{m}"] = score(m, arr, truth["mask"], truth["posterior"], cfg)
        out.arrays[f"random_scores_{m}"] = np.zeros((len(ev), 3), np.float32)  # filled by the control
    if not ev.any():
        return out
    for m in maps:
        out.metrics.update(dict(zip(keys(m)["scores"], out.arrays[f"scores_{m}"][ev].mean(0).tolist(), strict=True)))
    for m in maps:
        for key, goal, what in zip(keys(m)["scores"], (MASS_TARGET, POSTERIOR_TARGET, POINTING_TARGET),
                                   ("relevance mass inside the burst times", "share on the posterior channels",
                                    "pointing game (largest relevance on a posterior channel in a burst)"),
                                   strict=True):
            out.check(key, out.metrics[key] >= goal, out.metrics[key], goal,
                      f"{_name(w, m)}: {what}, {cfg.readout} readout, on {int(ev.sum())} correctly classified drowsy "
                      f"windows (chance: mass {truth['chance_mass']:.2f}, posterior {truth['chance_posterior']:.2f})")
    out.info["random_example_window"] = int(np.flatnonzero(ev)[0])
    return out


def _random_maps(w, rnd: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, methods) -> dict:
    """Each method's maps of the randomized copy ``rnd`` (BatchNorm with these windows' statistics: a
    re-drawn model has no population statistics that fit it; the trained affine when nothing was re-drawn)."""
    cfg = w.config
    sc, sh = em.bn_affine(rnd, x, "batch") if cfg.randomize_layers != 0 else (w.scale, w.shift)
    out = {}
    if "cam" in methods:
        z, a, _ = em.forward_parts(rnd, x, sc, sh)
        out["cam"] = em.cam_heatmap(rnd, x, z, a, target, cfg.top_n, cfg.radius)
    canon = em.canonical_model(rnd, sc, sh, contrast=cfg.explain == "contrast")
    if "lrp" in methods:
        out["lrp"] = em.lrp_maps(canon, x, target, cfg.lrp_epsilon, relative=True)
    if "ig" in methods:
        out["ig"] = x * em.ig_gradients(canon, x, target, cfg.ig_steps)
    return {k: v.cpu().numpy() for k, v in out.items()}


def randomization(w, methods, scored: dict, truth: dict, mapper=None) -> Findings:
    """The shared randomization control for every computed map, on the evaluated windows: mean scores over
    ``random_draws`` re-drawn copies, the drop from the trained map, and two checks per map. ``scored``:
    method -> the trained (N, 3) scores. ``mapper`` (randomized module, x, target, methods) -> maps: the maps of
    a generic network (generic.random_mapper); None = Cui et al.'s layout. Also the CAM variant of the other
    class (Cui's layout only)."""
    cfg, ctx = w.config, w.ctx
    ev = truth["evaluated"]
    keep = torch.as_tensor(ev, device=w.x.device)
    x, target = w.x[keep], w.target[keep]
    mask, post = truth["mask"][ev], truth["posterior"]
    draws = {m: [] for m in methods}
    out = Findings()
    for k in range(cfg.random_draws):
        ctx.progress(0.55 + 0.1 * k / cfg.random_draws, f"randomization control {k + 1}/{cfg.random_draws}")
        rnd = randomized_copy(w.module, cfg.randomize_layers, ctx.seed, draw=k)
        out.info["randomized_layers"] = rnd.layers
        made = (mapper or functools.partial(_random_maps, w))(rnd.module, x, target, methods)
        for m, h in made.items():
            draws[m].append(score(m, h, mask, post, cfg))
            if k == 0:
                out.arrays[f"random_{m}_example"] = h[0]
    chance, limit = truth["chance_mass"], truth["chance_mass"] + CHANCE_MARGIN
    for m in methods:
        per_window = np.mean(draws[m], axis=0)  # (n_evaluated, 3)
        full = np.zeros((len(ev), 3), np.float32)
        full[ev] = per_window
        out.arrays[f"random_scores_{m}"] = full
        r, trained = per_window.mean(0), float(scored[m][ev, 0].mean())
        kk = keys(m)
        out.metrics.update(dict(zip(kk["random"], r.tolist(), strict=True)))
        drop = trained - float(r[0])
        out.metrics[kk["drop"]] = drop
        out.check(kk["drop"], drop >= MIN_DROP, drop, MIN_DROP,
                  f"{_name(w, m)}: mass in the bursts falls from {trained:.2f} to {r[0]:.2f} when every weight is "
                  f"re-drawn ({cfg.random_draws} draw(s)); it must fall by at least {MIN_DROP} (a map that keeps "
                  f"its localization without the learned weights shows the input's energy, not the model's evidence)")
        out.check(kk["falls"], r[0] <= limit, float(r[0]), limit,
                  f"{_name(w, m)}: mass in the bursts of the re-initialized model must fall to chance ({chance:.2f}) "
                  f"+ {CHANCE_MARGIN}")
    if "cam" in methods and mapper is None:
        z, a, _ = em.forward_parts(w.module, x, w.scale, w.shift)
        other = em.cam_heatmap(w.module, x, z, a, 1 - target.clamp(max=1), cfg.top_n, cfg.radius).cpu().numpy()
        o = score("cam", other, mask, post, cfg).mean(0)
        out.metrics.update(dict(zip(("other_class_mass_in_bursts", "other_class_posterior_share",
                                     "other_class_pointing_game"), o.tolist(), strict=True)))
    return out


def rank_randomization(w, maps: dict, mapper=None, example: int = 0) -> Findings:
    """The same control where no truth exists: per method, the mean over windows and ``random_draws`` of the
    Spearman rank correlation of |map| (trained vs re-initialized), ``<prefix>randomization_rank_corr``, with a
    check. ``maps``: method -> (n, C, T) numpy of the trained model; ``mapper`` as in :func:`randomization`;
    ``example``: the window whose randomized maps are kept for display."""
    cfg, ctx = w.config, w.ctx
    rho = {m: [] for m in maps}
    out = Findings()
    for k in range(cfg.random_draws):
        ctx.progress(0.55 + 0.1 * k / cfg.random_draws, f"randomization control {k + 1}/{cfg.random_draws}")
        rnd = randomized_copy(w.module, cfg.randomize_layers, ctx.seed, draw=k)
        out.info["randomized_layers"] = rnd.layers
        made = (mapper or functools.partial(_random_maps, w))(rnd.module, w.x, w.target, list(maps))
        for m, h in made.items():
            rho[m].append(mean_spearman_abs(maps[m], h))
            if k == 0:
                out.arrays[f"random_{m}_example"] = h[example]
    out.info["random_example_window"] = int(example)
    for m, vals in rho.items():
        name, r = f"{PREFIX[m]}randomization_rank_corr", float(np.mean(vals))
        out.metrics[name] = r
        out.check(name, r < RHO_THRESHOLD, r, RHO_THRESHOLD,
                  f"{_name(w, m)}: Spearman rank correlation of |map| between the model and its copy with "
                  f"{len(out.info['randomized_layers'])} layer(s) re-drawn ({cfg.random_draws} draw(s)); no planted "
                  "truth here, so the control compares the maps: a map that survives randomization shows the input, "
                  "not what the model learned")
    return out


def set_level(metrics: dict, checks: list, arrays: dict) -> None:
    """Recompute, in place, the localization and randomization metrics of a merged data-set result over all
    its evaluated windows (the generic merge weights chunk means by chunk size, not by evaluated windows),
    and give the matching checks those values (whether a check held stays: held on every chunk)."""
    ev = arrays.get("evaluated")
    if ev is None or not np.asarray(ev).any():
        return
    ev = np.asarray(ev, bool)
    metrics["n_evaluated"] = float(ev.sum())
    if "burst_fraction" in arrays:
        metrics["chance_mass_in_bursts"] = float(np.asarray(arrays["burst_fraction"])[ev].mean())
    for m in PREFIX:
        kk = keys(m)
        if f"scores_{m}" in arrays:
            metrics.update(dict(zip(kk["scores"], np.asarray(arrays[f"scores_{m}"])[ev].mean(0).tolist(), strict=True)))
        if f"random_scores_{m}" in arrays and f"scores_{m}" in arrays:
            r = np.asarray(arrays[f"random_scores_{m}"])[ev].mean(0)
            metrics.update(dict(zip(kk["random"], r.tolist(), strict=True)))
            metrics[kk["drop"]] = metrics[kk["scores"][0]] - float(r[0])
    for c in checks:
        if c.name in metrics and c.name not in ("n_evaluated",):
            c.value = metrics[c.name]
    for c in checks:
        for m in PREFIX:
            if c.name == keys(m)["falls"] and keys(m)["random"][0] in metrics:
                c.value = metrics[keys(m)["random"][0]]
