"""The quality panel an analyzer adds to its result on request (``quality=true``): for every map, deletion and
insertion AUC against a seeded random map, Gini sparseness and effective support (analyzers/_shared/quality.py).

Threshold, documented: a map "beats the random baseline" when, averaged over the samples, its deletion AUC is
below the random map's AND its insertion AUC above it: the check's value is the smaller of the two margins
(AUC units: probability x fraction of features), and it passes above 0. No larger margin is claimed: how far
a faithful map beats random depends on the model and the data, so any other number would be invented.
Signed maps are ordered by signed value (most positive evidence first), as deletion/insertion are defined.

On request (``explain``: name -> a function that recomputes that map), the panel adds the randomization metrics
that need the method itself: eMPRT and the random-logit test (quality_random.py, thresholds documented there).
They cost one extra explanation per test and map (eMPRT on a fully randomized copy, random-logit for another
class), so they are off unless ``explain`` is given.
"""

from __future__ import annotations

import numpy as np

from analyzers._shared.findings import Findings
from analyzers._shared.quality import effective_support, gini, perturbation_curves, random_maps
from analyzers._shared.quality_random import TESTS, randomization_findings
from analyzers._shared.quality_road import road_curves

MARGIN = 0.0
DEFAULT_STEP = 0.05
RANDOM = "random"


def quality_panel(forward, x, maps: dict, target, baseline=None, *, step: float = DEFAULT_STEP, seed: int = 0,
                  rows_per_forward: int = 64, road: bool = False, road_noise: float = 0.01,
                  explain: dict | None = None, randomization: tuple = TESTS) -> Findings:
    """``maps``: name -> (N, ...) tensor or array (see quality.perturbation_curves for shapes); ``x`` (N, C, ...)
    tensor; ``target`` (N,) int64 tensor; ``baseline`` like ``x`` or None (zeros). ``road``: add ROAD MoRF/LeRF
    curves (quality_road.py; pictures with per-pixel maps only, else noted in info). Arrays: per map
    ``quality_deletion_<name>`` / ``quality_insertion_<name>`` (N, S) curves and their AUCs (N,), ``gini`` and
    ``support`` (N,); ``quality_fractions`` (S,). Metrics: the sample means. Checks: ``quality_beats_random_<name>``.
    ``explain``: name -> ``fn(module, x, target) -> map`` for the maps that get eMPRT and the random-logit test
    (``randomization``: which of the two); ``forward`` must then be the torch module (see quality_random.py)."""
    import torch

    first = next(iter(maps.values()))
    named = {**maps, RANDOM: torch.as_tensor(random_maps(tuple(first.shape), seed))}
    out = Findings(info={"quality_step": float(step), "quality_maps": list(maps), "quality_margin": MARGIN})
    aucs = {}
    for name, m in named.items():
        m = m if torch.is_tensor(m) else torch.as_tensor(np.asarray(m))
        c = perturbation_curves(forward, x, m, target, baseline, step=step, rows_per_forward=rows_per_forward)
        aucs[name] = (float(c.deletion_auc.mean()), float(c.insertion_auc.mean()))
        out.arrays.update({"quality_fractions": c.fractions, f"quality_deletion_{name}": c.deletion,
                           f"quality_insertion_{name}": c.insertion, f"quality_deletion_auc_{name}": c.deletion_auc,
                           f"quality_insertion_auc_{name}": c.insertion_auc})
        if road and x.dim() == 4 and tuple(m.shape) == (x.shape[0], *x.shape[2:]):
            _, morf, lerf = road_curves(forward, x, m, target, step=step, noise=road_noise, seed=seed,
                                        rows_per_forward=rows_per_forward)
            for kind, curve in (("road_morf", morf), ("road_lerf", lerf)):
                area = np.trapezoid(curve, c.fractions, axis=1)
                out.arrays.update({f"quality_{kind}_{name}": curve, f"quality_{kind}_auc_{name}": area})
                out.metrics[f"quality_{kind}_auc_{name}"] = float(area.mean())
        elif road:
            out.info["quality_road_skipped"] = "ROAD imputes pixels of pictures: the maps here are not per pixel"
        a = m.detach().cpu().numpy()
        g, sup = gini(a), effective_support(a)
        out.arrays.update({f"quality_gini_{name}": g, f"quality_support_{name}": sup})
        out.metrics.update({f"quality_deletion_auc_{name}": aucs[name][0],
                            f"quality_insertion_auc_{name}": aucs[name][1], f"quality_gini_{name}": float(g.mean()),
                            f"quality_support_{name}": float(sup.mean())})
    rd, ri = aucs[RANDOM]
    for name in maps:
        d, i = aucs[name]
        margin = min(rd - d, i - ri)
        out.metrics[f"quality_margin_{name}"] = margin
        out.check(f"quality_beats_random_{name}", margin > MARGIN, margin, MARGIN,
                  f"deletion AUC {d:.3f} vs random {rd:.3f} (lower is better), insertion AUC {i:.3f} vs random "
                  f"{ri:.3f} (higher is better), step {step:g} of the features; the value is the smaller margin")
    if explain:
        if not isinstance(forward, torch.nn.Module):
            raise TypeError("eMPRT and the random-logit test re-draw the model's layers: forward must be a module")
        out.merge(randomization_findings(explain, forward, x, maps, target, seed=seed, tests=tuple(randomization)))
    return out
