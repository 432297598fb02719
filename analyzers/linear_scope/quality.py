"""The quality panel (analyzers/_shared/quality_panel.py) on LinearScope's contribution maps: for every sample,
the predicted class's vote map (A(x)^T e_top * x summed over channels, ``set_votes_top1``; the map the
data-set views show) is judged by deletion / insertion AUC against a random map, Gini and effective support,
optionally ROAD, and on request eMPRT and the random-logit test, which recompute the vote map: with every
layer of the network re-drawn (eMPRT) or for a random other class (random logit), each through its own frozen
replay, so they cost one trace and one row of A per sample and test.

Classifiers only: an image-to-image model has no class whose probability the curves could read.
"""

from __future__ import annotations

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers._shared.quality_panel import quality_panel
from analyzers.linear_scope.products import Products
from analyzers.linear_scope.replay import trace

MAP = "votes"
LABELS = {MAP: "vote map (LinearScope)"}


def vote_maps(module, x: torch.Tensor, target, *, gate: str = "ratio", freeze: bool = True) -> torch.Tensor:
    """(N, H, W) vote maps of ``module`` for classes ``target`` (N,) at inputs ``x`` (N, C, H, W): each sample
    frozen at itself, the row of A for its class times the input, summed over channels (as ``set_votes_top1``)."""
    out = []
    for i, t in enumerate(torch.as_tensor(target).reshape(-1).tolist()):
        replay = trace(module, x[i:i + 1], gate=gate, freeze=freeze)
        row = Products(replay).rows(torch.tensor([int(t)]), chunk=1)[0]
        out.append((row * replay.x0[0]).detach().sum(0))
    return torch.stack(out)


def quality_findings(module, x: torch.Tensor, arrays: dict, config, ctx, classifier: bool) -> Findings:
    """The panel for the vote maps in ``arrays`` (``set_votes_top1`` (N, H, W), ``set_top1`` (N,)) of the inputs
    ``x`` (N, C, H, W) in the replay's dtype; ``config``: the analyzer's (quality_step, quality_road,
    quality_randomization, gate, freeze)."""
    if not classifier:
        return Findings(info={"quality_skipped": "the quality panel reads class probabilities: classifiers only"})
    maps = {MAP: torch.as_tensor(np.asarray(arrays["set_votes_top1"])).to(x)}
    target = torch.as_tensor(np.asarray(arrays["set_top1"]), dtype=torch.long, device=x.device)
    explain = None
    if config.quality_randomization:
        def explain_votes(m, xs, t):
            return vote_maps(m, xs, t, gate=config.gate, freeze=config.freeze)

        explain = {MAP: explain_votes}
    ctx.progress(0.99, "quality panel")
    return quality_panel(module, x, maps, target, step=config.quality_step, seed=ctx.seed,
                         rows_per_forward=max(16, ctx.batch_size), road=config.quality_road, explain=explain)
