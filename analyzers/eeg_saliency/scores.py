"""Window selection, planted-truth bookkeeping and the BatchNorm-trap measurement for eeg_saliency."""

from __future__ import annotations

import numpy as np
import torch

from analyzers.eeg_saliency import maps as em


def select_windows(data, max_windows: int) -> dict:
    """The windows to analyse (at most ``max_windows``, evenly spread) and what is known about them.

    Returns index (n,) into the batch, ids, labels (n,) int64 (-1 unknown), subjects (n,) int64 (0 unknown),
    masks (list of (C, T) bool or None), samples_all (every sample of the data id, for the LOSO protocol)."""
    from workbench.data import get_samples

    n = data.x.shape[0]
    index = np.arange(n) if n <= max_windows else np.unique(np.linspace(0, n - 1, max_windows).round().astype(int))
    samples = get_samples(data.data_id) if data.data_id else []
    by_id = {s.id: s for s in samples}
    chosen = [by_id.get(data.ids[i]) for i in index]
    labels = [data.labels[i] if i < len(data.labels) and data.labels[i] is not None else -1 for i in index]
    return {"index": index.astype(np.int64), "ids": [data.ids[i] for i in index],
            "labels": np.array(labels, dtype=np.int64),
            "subjects": np.array([(s.meta.get("subject") or 0) if s else 0 for s in chosen], dtype=np.int64),
            "masks": [s.meta.get("mask") if s else None for s in chosen], "samples_all": samples,
            "channels": tuple(next((s.meta.get("channels") for s in chosen if s and s.meta.get("channels")), ()))}


def truth_for(sel: dict, pred: np.ndarray, card) -> dict | None:
    """Planted truth of the selected windows, or None when any window lacks a burst mask or a label.

    mask (n, C, T) bool; posterior (C,) bool (the synthetic set's posterior channels); evaluated (n,) bool:
    correctly classified drowsy windows that contain a burst; chance_mass: mean burst-time fraction of the
    evaluated windows; chance_posterior: share of posterior channels."""
    from workbench.data.eeg_synth import CHANNELS, posterior_mask

    if any(m is None for m in sel["masks"]) or (sel["labels"] < 0).any():
        return None
    if tuple(card.extra.get("channels", CHANNELS)) != CHANNELS:
        return None
    mask = np.stack([np.asarray(m, bool) for m in sel["masks"]])
    drowsy = len(card.class_names) - 1
    evaluated = (sel["labels"] == drowsy) & (pred == drowsy) & mask.any((1, 2))
    post = posterior_mask()
    chance = float(mask[evaluated].any(1).mean()) if evaluated.any() else 0.0
    return {"mask": mask, "posterior": post, "evaluated": evaluated, "chance_mass": chance,
            "chance_posterior": float(post.mean())}


@torch.no_grad()
def bn_trap(module: torch.nn.Module, x: torch.Tensor) -> dict:
    """What batch statistics do to predictions: P(last class) of every window (n,) when BatchNorm uses the
    statistics of the whole batch ("batch"), of the window alone ("alone": statistics over its time steps
    only, what a batch of one gives), and the frozen population statistics (identical alone or in a batch).

    Returns batch, alone, frozen (n,) float32, flip_rate (share of windows whose predicted class differs
    between batch and alone), max_shift (largest |batch - alone|), frozen_shift (largest change of the
    frozen prediction between the batch and one window at a time)."""
    z = em.pre_bn(module, x)
    r = torch.relu(z).double()
    bn = module.bn
    gamma = (bn.weight if bn.affine else torch.ones(r.shape[1], device=r.device)).double()
    beta = (bn.bias if bn.affine else torch.zeros(r.shape[1], device=r.device)).double()

    def probs(mean, var):
        a = gamma[..., None] * (r - mean) / torch.sqrt(var + bn.eps) + beta[..., None]
        return torch.softmax(module.fc(a.mean(2).float()), 1)[:, -1]

    batch = probs(r.mean((0, 2))[:, None], r.var((0, 2), unbiased=False)[:, None])
    alone = probs(r.mean(2, keepdim=True), r.var(2, unbiased=False, keepdim=True))
    scale, shift = em.bn_affine(module, x, "frozen")
    frozen = torch.softmax(em.forward_parts(module, x, scale, shift)[2], 1)[:, -1]
    one_by_one = torch.cat([torch.softmax(em.forward_parts(module, x[i:i + 1], scale, shift)[2], 1)[:, -1]
                            for i in range(len(x))])
    flips = ((batch > 0.5) != (alone > 0.5)).float().mean()
    return {"batch": batch.cpu().numpy().astype(np.float32), "alone": alone.cpu().numpy().astype(np.float32),
            "frozen": frozen.cpu().numpy().astype(np.float32), "flip_rate": float(flips),
            "max_shift": float((batch - alone).abs().max()), "frozen_shift": float((frozen - one_by_one).abs().max())}
