"""Integrated Gradients that chooses its own step count to meet the completeness axiom.

Sundararajan et al. 2017: the attributions of IG sum to f(x) - f(baseline) in the limit of infinitely
many path steps; the gap at a finite step count is the quadrature error. The analyzer starts at the
configured ``n_steps`` and doubles the steps, for the samples still over the threshold only, until every
gap is under it or the next doubling would pass ``ig_max_steps``. What was done (steps per sample, the
worst gap after each doubling) goes into the result, so a failing check says how far it got.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from analyzers.attribution.methods import Setup, attribute

GAP_THRESHOLD = 0.01  # |sum IG - (f(x) - f(b))| / |f(x)|: 1% as in Sundararajan et al.'s "within 5%", tightened


def completeness_gap(module, s: Setup, ig: torch.Tensor, fx: torch.Tensor | None = None) -> np.ndarray:
    """Per image |sum(IG) - (f(x) - f(b))| / |f(x)| for the explained logit; (N,) float64. ``ig``: (N, H, W);
    ``fx``: (N,) the explained logits at x when the caller has them (no second forward), else computed."""
    with torch.no_grad():
        fx = (module(s.x).gather(1, s.target[:, None])[:, 0] if fx is None else fx).double()
        fb = module(s.baseline).gather(1, s.target[:, None])[:, 0].double()
    total = ig.double().flatten(1).sum(1)
    return (torch.abs(total - (fx - fb)) / fx.abs().clamp_min(1e-12)).cpu().numpy()


@dataclass
class StepSearch:
    """The outcome: ``ig`` (N, H, W) at the steps each sample needed, ``gap`` (N,), ``steps`` (N,) int,
    ``schedule``: step count -> [samples computed at it, worst gap among them after it]."""

    ig: torch.Tensor
    gap: np.ndarray
    steps: np.ndarray
    schedule: dict = field(default_factory=dict)

    def describe(self, bound: int) -> str:
        start = min(int(k) for k in self.schedule)
        parts = [f"{k} steps: {n} sample(s), worst gap {100 * g:.2f}%" for k, (n, g) in self.schedule.items()]
        if len(self.schedule) == 1:
            done = f"{start} steps were enough" if self.gap.max() < GAP_THRESHOLD else \
                f"no doubling allowed (ig_max_steps={bound})"
        else:
            done = f"doubled from {start} to at most {int(self.steps.max())} steps (bound {bound})"
        return f"|sum IG - (f(x) - f(baseline))| / |f(x)|; {done}; " + "; ".join(parts)


def search_steps(module, layer, s: Setup, ig: torch.Tensor, ctx, bound: int,
                 fx: torch.Tensor | None = None) -> StepSearch:
    """Double IG's steps for the samples whose gap is >= GAP_THRESHOLD until none is or 2 * steps > bound.
    ``ig``: (N, H, W), computed at ``s.cfg.n_steps``; ``fx``: (N,) explained logits at x if known. More steps
    replace fewer (the quadrature only improves in the limit, so the latest estimate is kept even where a gap
    grows)."""
    gap = completeness_gap(module, s, ig, fx)
    k = int(s.cfg.n_steps)
    out = StepSearch(ig.clone(), gap, np.full(len(gap), k), {str(k): [len(gap), float(gap.max())]})
    while (out.gap >= GAP_THRESHOLD).any() and 2 * k <= bound:
        k *= 2
        bad = np.flatnonzero(out.gap >= GAP_THRESHOLD)
        rows = torch.as_tensor(bad, device=s.x.device)
        sub = s.rows(rows).with_steps(k)
        ctx.progress(getattr(ctx, "fraction", 0.5), f"integrated gradients: {k} steps for {len(bad)} sample(s)")
        new = ctx.batched(lambda i, sub=sub: attribute("integrated_gradients", module, layer, sub.rows(i)),
                          torch.arange(len(bad), device=s.x.device), report=False)
        g = completeness_gap(module, sub, new, None if fx is None else fx[rows])
        out.ig[rows] = new.to(out.ig)
        out.gap[bad], out.steps[bad] = g, k
        out.schedule[str(k)] = [len(bad), float(g.max())]
    return out
