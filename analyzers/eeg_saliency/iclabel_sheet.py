"""EEG saliency on ICLabel (models/eeg_iclabel.py): which scalp regions, frequencies and autocorrelation lags of an
independent component drove ICLabel's label, by LRP (zennit) and Integrated Gradients (captum).

The input is ICLabel's (1, 34, 100) feature sheet (card ``extra['input_layout'] == 'iclabel_sheet'``): rows 0-31 /
columns 0-31 the 32 x 32 topomap on EEGLAB's grid (row = front-back axis, row 31 towards the nose; column =
left-right axis, column 31 at the right ear), columns 32-63 the negated topomap, row 32 the power spectrum, row 33
the autocorrelation; the rest is zero and never read by the network. How a map is split (mne-icalabel 0.10,
``get_iclabel_features``):

* topomap: a pixel reaches the network twice (itself and its negated copy), so its relevance is the sum of the two
  (``topo``, (N, 32, 32));
* spectrum: bin j is (j + 1) Hz (1-s Hamming windows, 1 Hz resolution, bins 1..100 Hz); bins above the
  recording's Nyquist frequency (64 Hz at 128 Hz) are copies of the last real bin (mne-icalabel pads them), found
  here as the constant tail all components share and flagged as padding;
* autocorrelation: resampled to 100 samples per second and lag 0 dropped, so lag j is 10 (j + 1) ms.

The three parts add up to the whole map (the unused area carries exactly zero: the network never reads it; the
``sheet_parts_complete`` check holds that). There is no ground truth for a real recording: what is checked is
what can be, the LRP conservation share, IG completeness, the model-randomization control (on the 1024 + 200
features, not on the unused zeros, which would tie and inflate the rank correlation) and, on request, the quality
panel.

LRP rule: zennit's EpsilonPlusFlat (Flat on the first convolution, z+ on the others, epsilon on dense layers),
the composite the model doc measured: the input keeps 0.84-0.93 of the logit on the Emotiv components, the rest
is absorbed by the convolution biases under z+. Grad-CAM is not computed: the spectrum and autocorrelation
branches end in one channel, whose "CAM" is the activation times one number, and the topomap branch's last map is
4 x 4 pixels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from analyzers._shared.findings import Findings
from analyzers.eeg_saliency import generic as gm
from analyzers.eeg_saliency.sheet_layout import LAYOUT, SHEET, is_sheet  # noqa: F401 - re-exported
from workbench.core.errors import ConfigError

SHEET_METHODS = ("lrp", "ig")
CONSERVATION_BAND = (0.80, 1.0)  # LRP share kept at the input (model doc: 0.84-0.93; z+ biases absorb the rest)
IG_GAP_MAX = 0.05  # median |sum IG - (f(x) - f(0))| / |f(x) - f(0)|: a path integral off by more is too coarse
REGIONS = (("frontal", 1 / 6, 1.0), ("central", -1 / 6, 1 / 6), ("posterior", -1.0, -1 / 6))  # EEGLAB x, head r 0.5
BANDS = (("delta", 1, 3), ("theta", 4, 7), ("alpha", 8, 12), ("beta", 13, 30), ("gamma", 31, 100))  # integer Hz
HZ = np.arange(1, 101, dtype=np.float32)
LAG_MS = 10.0 * np.arange(1, 101, dtype=np.float32)
GRID = np.linspace(-0.5, 0.5, 32).astype(np.float32)  # EEGLAB topoplot's grid (head radius 0.5)


# ---- the sheet's parts -----------------------------------------------------------------------------------

def split(r: np.ndarray) -> dict:
    """A map on sheets (N, 1, 34, 100) or (N, 34, 100) -> ``topo`` (N, 32, 32) (both copies of each pixel added),
    ``psd`` (N, 100), ``ac`` (N, 100), ``parts`` (N, 3) their sums (topomap, spectrum, autocorrelation),
    ``unused`` (N,) sum of |map| where the network reads nothing, ``total`` (N,) the whole map's sum."""
    r = np.asarray(r, np.float64).reshape(len(r), 34, 100)
    topo, psd, ac = r[:, :32, :32] + r[:, :32, 32:64], r[:, 32], r[:, 33]
    parts = np.stack([topo.sum((1, 2)), psd.sum(1), ac.sum(1)], 1)
    return {"topo": topo, "psd": psd, "ac": ac, "parts": parts, "unused": np.abs(r[:, :32, 64:]).sum((1, 2)),
            "total": r.sum((1, 2))}


def real_bins(sheets: np.ndarray) -> int:
    """Spectrum bins that are measured, not padded: mne-icalabel repeats the last bin below Nyquist up to 100 Hz,
    so the padding is the constant tail every component shares (100 when there is none)."""
    psd = np.asarray(sheets, np.float64).reshape(len(sheets), 34, 100)[:, 32]
    changed = np.flatnonzero((psd[:, 1:] != psd[:, :-1]).any(0))
    return int(changed[-1]) + 2 if changed.size else 1


def head_mask(sheets: np.ndarray) -> np.ndarray:
    """(32, 32) bool: the topomap pixels inside the head (mne-icalabel sets those outside to 0 in every component)."""
    topo = np.asarray(sheets, np.float64).reshape(len(sheets), 34, 100)[:, :32, :32]
    return (np.abs(topo) > 0).any(0)


def features(r: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(N, F) the map's features: the topomap pixels inside the head, then 100 spectrum bins, then 100 lags."""
    s = split(r)
    return np.concatenate([s["topo"][:, head], s["psd"], s["ac"]], 1)


def input_features(sheets: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(N, F) the sheets' own features in :func:`features`' order (a pixel's value once, not its two copies added:
    the negated copy would cancel it); what :class:`iclabel_run.FeatureForward` packs back into sheets."""
    s = np.asarray(sheets, np.float64).reshape(len(sheets), 34, 100)
    return np.concatenate([s[:, :32, :32][:, head], s[:, 32], s[:, 33]], 1)


def region_shares(topo: np.ndarray) -> np.ndarray:
    """(N, 3) share of the positive topomap relevance (N, 32, 32) in the frontal, central and posterior thirds of
    the head (EEGLAB x: the row axis, + towards the nose)."""
    pos = np.clip(topo, 0, None)
    total = np.maximum(pos.sum((1, 2)), 1e-30)
    return np.stack([pos[:, (GRID > lo) & (GRID <= hi)].sum((1, 2)) / total for _, lo, hi in REGIONS], 1)


def band_shares(psd: np.ndarray, n_real: int) -> np.ndarray:
    """(N, len(BANDS) + 1) share of the positive spectrum relevance (N, 100) per band of measured bins; the last
    column is the padding above Nyquist."""
    pos = np.clip(psd, 0, None)
    total = np.maximum(pos.sum(1), 1e-30)
    cols = [pos[:, lo - 1:min(hi, n_real)].sum(1) for _, lo, hi in BANDS] + [pos[:, n_real:].sum(1)]
    return np.stack(cols, 1) / total[:, None]


# ---- the maps ---------------------------------------------------------------------------------------------

def private(module: nn.Module) -> nn.Module:
    """A private eval copy without parameter gradients, for zennit's hooks: the shared module may serve another
    session's forward while the rules are attached. Made once per run (or per randomized draw), not per chunk."""
    net = copy.deepcopy(module).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def lrp(net: nn.Module, x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """EpsilonPlusFlat relevance (N, 1, 34, 100) of the explained output sum_k coef_k logit_k; ``net`` is a
    private copy (:func:`private`) that the composite's hooks are attached to and removed from."""
    from analyzers._shared.lrp import applied, make_composite

    with applied(make_composite("epsilon_plus_flat", None, None), net):
        xin = x.detach().clone().requires_grad_(True)
        out = net(xin)
        (rel,) = torch.autograd.grad(out, xin, (out * coef).detach())
    return rel.detach()


def maps_for(module: nn.Module, x: torch.Tensor, target: torch.Tensor, methods, config) -> dict:
    """method -> (N, 1, 34, 100) torch map of ``module`` on sheets ``x`` (trained model and randomized copies)."""
    with torch.no_grad():
        coef = gm.coefficients(module(x), target, config.explain == "contrast")
    out = {}
    if "lrp" in methods:
        out["lrp"] = lrp(private(module), x, coef)
    if "ig" in methods:
        out["ig"] = x * gm.ig_gradients(module, x, coef, config.ig_steps)
    return out


@dataclass
class SheetRun:
    """What the shared randomization control reads (truth.rank_randomization): the shared module, the sheets
    ``x`` (N, 1, 34, 100), the explained classes ``target`` (N,), the run's config and context; ``logits`` (N, K)
    of the run's one forward pass, which :func:`compute` reuses (None: computed there)."""

    module: nn.Module
    x: torch.Tensor
    target: torch.Tensor
    config: object
    ctx: object
    cui: bool = False
    logits: torch.Tensor | None = None


def methods_of(config) -> tuple[list[str], list[str]]:
    """(methods run on the sheet, methods asked for that are not defined there); ConfigError when none is left."""
    asked = [m.strip() for m in config.methods.split(",") if m.strip()]
    run = [m for m in asked if m in SHEET_METHODS]
    if not run:
        raise ConfigError("on ICLabel's feature sheet EEG saliency computes LRP and Integrated Gradients only "
                          "(Grad-CAM has no spatial map there)", "use methods=lrp,ig")
    if config.quality_randomization:
        raise ConfigError("eMPRT and the random-logit test are not defined on ICLabel's feature sheet",
                          "turn quality_randomization off (the randomization control runs anyway)")
    return run, [m for m in asked if m not in SHEET_METHODS]


def compute(w: SheetRun, methods: list[str]) -> tuple[dict, Findings]:
    """method -> (N, 1, 34, 100) numpy map, and the conservation / completeness figures with their checks."""
    cfg, ctx, x, target, module = w.config, w.ctx, w.x, w.target, w.module
    idx = torch.arange(len(x), device=x.device)
    with torch.no_grad():
        logits = w.logits if w.logits is not None else module(x)
        coef = gm.coefficients(logits, target, cfg.explain == "contrast")
        value = (logits * coef).sum(1)
        diff = value - gm.explained(module, torch.zeros_like(x), coef)
    out, maps = Findings(), {}
    if "lrp" in methods:
        net = private(module)
        maps["lrp"] = ctx.batched(lambda i: lrp(net, x[i], coef[i]), idx, start=0.05, stop=0.15, label="LRP")
        share = (maps["lrp"].sum((1, 2, 3)) / value).cpu().numpy().astype(np.float64)
        lo, hi = CONSERVATION_BAND
        out.arrays.update(ic_value_lrp=value.cpu().numpy(), ic_share_lrp=share)
        out.metrics.update(lrp_conservation=float(np.median(share)), lrp_conservation_min=float(share.min()),
                           lrp_conservation_max=float(share.max()))
        worst = float(share.max() if share.max() > hi else share.min())  # the value furthest out of the band
        out.check("lrp_share_conserved", bool((share >= lo).all() and (share <= hi).all()), worst, lo,
                  f"share of the explained output that LRP (EpsilonPlusFlat) brings to the input, every component in "
                  f"[{lo:g}, {hi:g}] (models/eeg_iclabel.py: 0.84-0.93 of the logit on the Emotiv components; the "
                  f"convolution biases absorb the rest under z+); observed {share.min():.3f}-{share.max():.3f}")
    if "ig" in methods:
        grads = ctx.batched(lambda i: gm.ig_gradients(module, x[i], coef[i], cfg.ig_steps), idx, start=0.15,
                            stop=0.5, label="Integrated Gradients")
        maps["ig"] = x * grads
        gap = ((maps["ig"].sum((1, 2, 3)) - diff).abs() / diff.abs().clamp_min(1e-6)).cpu().numpy()
        out.arrays.update(ic_value_ig=diff.cpu().numpy(), ic_gap_ig=gap.astype(np.float64))
        out.metrics.update(ig_completeness_gap=float(np.median(gap)), ig_completeness_gap_max=float(gap.max()))
        out.check("ig_completeness", float(np.median(gap)) <= IG_GAP_MAX, float(np.median(gap)), IG_GAP_MAX,
                  f"Integrated Gradients ({cfg.ig_steps} steps from the all-zero sheet): median relative gap between "
                  f"the map's sum and f(x) - f(0) over the components (largest {gap.max():.3f}); more ig_steps "
                  "narrow it")
    return {k: v.detach().cpu().numpy() for k, v in maps.items()}, out


def random_mapper(w: SheetRun, head: np.ndarray):
    """The randomization control's map function, in feature form (N, F): the same features as the trained maps."""

    def fn(rnd: nn.Module, x: torch.Tensor, target: torch.Tensor, methods) -> dict:
        return {k: features(v.detach().cpu().numpy(), head) for k, v in maps_for(rnd, x, target, methods,
                                                                                 w.config).items()}

    return fn
