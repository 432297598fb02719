"""The eeg_saliency run on ICLabel's feature sheets (analyzers/eeg_saliency/iclabel_sheet.py has the maps and the
sheet's layout): ICLabel's prediction beside mne-icalabel's own label, per component and over the set where the
relevance sits (topomap regions, spectrum in Hz, autocorrelation lags in ms), and the checks that exist without
ground truth (LRP conservation, IG completeness, the randomization control, the quality panel on request)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from analyzers._shared.findings import Findings
from analyzers.eeg_saliency import iclabel_sheet as ics
from analyzers.eeg_saliency.truth import rank_randomization
from workbench.core.errors import ConfigError

PARTS = ("topomap", "psd", "autocorr")
UNUSED_MAX = 1e-6  # share of |relevance| on the sheet's unused area: the network never reads it, so exactly 0


class FeatureForward(nn.Module):
    """ICLabel on feature vectors (N, 1, F): the head's topomap pixels (``head`` (32, 32) bool, row-major), then
    100 spectrum bins and 100 lags, packed back into a sheet with its negated copy, so that removing a pixel (the
    quality panel) removes both copies and the sheet stays one ICLabel can read."""

    def __init__(self, net: nn.Module, head: np.ndarray):
        super().__init__()
        self.net = net
        self.register_buffer("idx", torch.as_tensor(np.flatnonzero(np.asarray(head).ravel())))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        n, k, t = f.shape[0], len(self.idx), f[:, 0]
        topo = f.new_zeros(n, 32 * 32).index_copy(1, self.idx, t[:, :k]).view(n, 32, 32)
        top = torch.cat([topo, -topo, f.new_zeros(n, 32, 36)], 2)
        sheet = torch.cat([top, t[:, None, k:k + 100], t[:, None, k + 100:k + 200]], 1)
        return self.net(sheet[:, None])


def _mne_labels(data, ids: list[str]) -> list[str]:
    """mne-icalabel's own label of each component (sample meta ``mne_icalabel_label``; "" where the data has none)."""
    from workbench.data import get_samples

    meta = {s.id: s.meta for s in (get_samples(data.data_id) if data.data_id else [])}
    return [str(meta.get(i, {}).get("mne_icalabel_label", "")) for i in ids]


def _shown(config, pred: np.ndarray, names: tuple) -> int:
    """The component shown in detail: the ``window`` option, else the first labelled eye blink, else the first that
    is not brain, else 0."""
    n = len(pred)
    if config.window >= n:
        raise ConfigError(f"window {config.window} is past the {n} analysed components",
                          f"use 0..{n - 1}, or -1 for the first eye-blink component")
    if config.window >= 0:
        return int(config.window)
    for want in ("eye blink", None):
        hit = [i for i, p in enumerate(pred) if (names[p] == want if want else names[p] != "brain")]
        if hit:
            return hit[0]
    return 0


def _describe(maps: dict, sheets: np.ndarray, head: np.ndarray, n_real: int) -> Findings:
    """Per method the split map, part sums, region and band shares; the parts-complete check."""
    out, worst = Findings(), 0.0
    for m, r in maps.items():
        s = ics.split(r)
        out.arrays.update({f"ic_map_{m}": r[:, 0].astype(np.float32), f"ic_topo_{m}": s["topo"].astype(np.float32),
                           f"ic_psd_{m}": s["psd"].astype(np.float32), f"ic_ac_{m}": s["ac"].astype(np.float32),
                           f"ic_parts_{m}": s["parts"], f"ic_total_{m}": s["total"],
                           f"ic_regions_{m}": ics.region_shares(s["topo"]), f"ic_bands_{m}": ics.band_shares(
                               s["psd"], n_real)})
        share = s["parts"] / np.where(np.abs(s["total"]) > 0, s["total"], 1.0)[:, None]
        out.metrics.update({f"{m}_share_{p}": float(share[:, j].mean()) for j, p in enumerate(PARTS)})
        at = np.abs(s["topo"])  # the Flat rule on LRP's first layer also spreads relevance onto the zeros outside
        out.metrics[f"{m}_topomap_outside_head"] = float((at[:, ~head].sum(1) / np.maximum(at.sum((1, 2)), 1e-30)
                                                          ).mean())
        mag = np.abs(np.asarray(r, np.float64)).reshape(len(r), -1).sum(1)
        worst = max(worst, float((s["unused"] / np.maximum(mag, 1e-30)).max()))
    out.check("sheet_parts_complete", worst <= UNUSED_MAX, worst, UNUSED_MAX,
              "share of |relevance| on the sheet's unused area (rows 0-31, columns 64-99), which the network never "
              "reads: with none there, topomap + spectrum + autocorrelation add up to the whole map")
    out.arrays.update(iclabel_head=head, iclabel_hz=ics.HZ, iclabel_lag_ms=ics.LAG_MS, iclabel_grid=ics.GRID)
    out.info.update(n_real_bins=int(n_real), parts=list(PARTS), regions=[r[0] for r in ics.REGIONS],
                    psd_bands=[f"{b} {lo}-{hi} Hz" for b, lo, hi in ics.BANDS] + [f"padding > {n_real} Hz"])
    return out


def _predictions(probs: np.ndarray, names: tuple, mne: list[str]) -> Findings:
    pred = probs.argmax(1)
    labels = [names[p] for p in pred]
    known = [i for i, lab in enumerate(mne) if lab]
    out = Findings(info={"iclabel_labels": labels, "mne_icalabel_labels": mne})
    if known:
        agree = float(np.mean([labels[i] == mne[i] for i in known]))
        out.metrics["agreement_with_mne_icalabel"] = agree
        out.check("agrees_with_mne_icalabel", agree == 1.0, agree, 1.0,
                  f"share of the {len(known)} components whose label here (mean logit of ICLabel's 4 views) is "
                  "mne-icalabel's own (mean probability of the 4 views); a difference marks a borderline component")
    return out


def _quality(w: ics.SheetRun, maps: dict, head: np.ndarray) -> Findings:
    """The shared quality panel on the sheet's features (pixels inside the head, spectrum bins, lags)."""
    from analyzers._shared.quality_panel import quality_panel

    w.ctx.progress(0.75, "quality panel: deletion and insertion curves")
    fx = torch.as_tensor(ics.input_features(w.x.cpu().numpy(), head), dtype=w.x.dtype, device=w.x.device)[:, None]
    fmaps = {m: torch.as_tensor(ics.features(v, head), dtype=w.x.dtype, device=w.x.device)[:, None]
             for m, v in maps.items()}
    return quality_panel(FeatureForward(w.module, head).eval(), fx, fmaps, w.target, step=w.config.quality_step,
                         seed=w.ctx.seed, rows_per_forward=max(64, w.ctx.batch_size))


def run_sheet(name: str, model, data, config, ctx, result_class):
    """The analyzer's run on an ICLabel card (``ics.is_sheet``): one result of ``result_class``."""
    methods, skipped = ics.methods_of(config)
    module, card = model.module, model.card
    n = min(len(data.x), config.max_windows)
    x, ids = data.x[:n], list(data.ids[:n])
    ctx.progress(0.02, "forward pass")
    with torch.no_grad():
        logits = module(x)
    probs = torch.softmax(logits, 1)
    w = ics.SheetRun(module, x, probs.argmax(1), config, ctx, logits=logits)
    names = tuple(card.class_names)
    maps, out = ics.compute(w, methods)
    sheets = x.cpu().numpy()[:, 0]
    head, n_real = ics.head_mask(sheets), ics.real_bins(sheets)
    pred = w.target.cpu().numpy()
    k = _shown(config, pred, names)
    out.merge(_predictions(probs.cpu().numpy(), names, _mne_labels(data, ids)))
    out.merge(_describe(maps, sheets, head, n_real))
    fmaps = {m: ics.features(v, head) for m, v in maps.items()}
    out.merge(rank_randomization(w, fmaps, ics.random_mapper(w, head), example=k))
    if config.quality:
        out.merge(_quality(w, maps, head))
    out.metrics["n_windows"] = float(n)
    out.arrays.update(probs=probs.cpu().numpy(), pred=pred, ic_sheet=sheets.astype(np.float32))
    out.arrays.update({f"show_{m}": v[k, 0].astype(np.float32) for m, v in maps.items()})
    out.info.update(layout=ics.LAYOUT, methods=methods, skipped_methods=skipped, class_names=list(names), ids=ids,
                    window=k, window_id=ids[k], has_truth=False, explain=config.explain,
                    architecture=str(card.architecture or ""), trained=bool(card.trained),
                    lrp_rule="EpsilonPlusFlat (zennit): Flat on the first convolution, z+ on the others")
    ctx.progress(0.98, "done")
    return out.result(result_class, name)
