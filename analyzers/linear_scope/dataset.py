"""LinearScope over many samples: every sample gets its own frozen replay (A(x) and c(x) depend on x).

The full analysis (rows, bias split, Jacobian check, singular triplets) runs on the batch's first sample;
this pass adds, for EVERY sample of the batch, what a data-set question needs: is the replay exact there,
does the vote identity hold, how large is the bias share of the predicted class (classifiers) or of the
output (image-to-image), and the predicted class's vote map. The data-set runner
(workbench/runtime/dataset_run.py) concatenates the ``set_*`` arrays over chunks and adds mean / sd /
per-class metrics; the ``*_set`` checks hold only if they held on every sample.
"""

from __future__ import annotations

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers.linear_scope import views
from analyzers.linear_scope.products import Products
from analyzers.linear_scope.replay import trace
from workbench.core import Check


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    den = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) / den if den > 0 else float((a - b).abs().max())


def _forward(module, x: torch.Tensor) -> torch.Tensor:
    out = module(x)
    if isinstance(out, (tuple, list)):
        out = next(o for o in out if isinstance(o, torch.Tensor))
    return out


def _one(module, x0: torch.Tensor, config, classifier: bool, replay=None) -> dict:
    """Replay, vote identity and bias share of one sample (1, *in_shape) (``replay``: already traced at x0)."""
    replay = replay or trace(module, x0, gate=config.gate, freeze=config.freeze)
    with torch.no_grad():
        y_real, y_rep = _forward(module, x0), replay(x0)
        lin, c = replay.linear(x0)[0], replay(torch.zeros_like(x0))[0]
        v = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=x0.dtype).to(x0.device)
        y1, y2 = replay(v), replay(2 * v)
    # affine in its input (as the analyzer's "affine" check, relative to the output's scale)
    affine = float((y2 - c - 2 * (y1 - c)).abs().max()) / max(float(y2.abs().max()), float(c.abs().max()), 1e-300)
    row = {"replay": _rel(y_rep, y_real), "affine": affine}
    lin_np, c_np = lin.detach().double().cpu().numpy(), c.detach().double().cpu().numpy()
    share = views.bias_share(lin_np, c_np)
    if not classifier:
        row.update(identity=0.0, share=float(share.mean()), top=-1,
                   votes=np.zeros(tuple(x0.shape[-2:]), np.float32))
        return row
    logits = y_real.reshape(-1)
    top = int(torch.argmax(logits))
    a_row = Products(replay).rows(torch.tensor([top]), chunk=1)[0]
    votes = (a_row * replay.x0[0]).detach()
    identity = abs(float(votes.sum()) + float(c.reshape(-1)[top]) - float(logits[top]))
    row.update(identity=identity / max(float(logits.abs().max()), 1e-300), share=float(share.reshape(-1)[top]),
               top=top, votes=votes.sum(0).double().cpu().numpy().astype(np.float32))
    return row


def set_pass(module, x: torch.Tensor, ids: list, config, classifier: bool, tol: dict, progress,
             replay0) -> Findings:
    """Per-sample exactness and bias share over every sample of ``x`` (N, *in_shape) named ``ids``;
    ``replay0``: the first sample's replay (already traced); ``progress(f, msg)``. Runs for one sample too,
    so every chunk of a data-set run (even one of a single sample) carries the same arrays."""
    rows = [_one(module, x[:1], config, classifier, replay0)]
    for i in range(1, x.shape[0]):
        progress(i / x.shape[0], f"sample {i + 1}/{x.shape[0]}: frozen replay")
        rows.append(_one(module, x[i:i + 1], config, classifier))
    replay = np.array([r["replay"] for r in rows])
    affine = np.array([r["affine"] for r in rows])
    identity = np.array([r["identity"] for r in rows])
    out = Findings(arrays={"set_replay_rel_error": replay, "set_affine_rel_error": affine,
                           "set_vote_identity_error": identity,
                           "set_bias_share": np.array([r["share"] for r in rows]),
                           "set_top1": np.array([r["top"] for r in rows], dtype=np.int64),
                           "set_votes_top1": np.stack([r["votes"] for r in rows])},
                   info={"set_ids": list(ids)})
    out.checks.append(Check("replay_exact_set", bool(np.all(replay <= tol["replay"])), float(replay.max()),
                            tol["replay"], f"the frozen replay reproduces f(x) on every one of the {len(rows)} "
                                           "samples (worst max |A x + c - f(x)| / max |f(x)|)"))
    out.checks.append(Check("affine_set", bool(np.all(affine <= tol["affine"])), float(affine.max()), tol["affine"],
                            "y(2v) - c = 2 (y(v) - c) for a random v on every sample: the replay is affine there"))
    if classifier:
        out.checks.append(Check("vote_identity_set", bool(np.all(identity <= tol["identity"])),
                                float(identity.max()), tol["identity"],
                                "sum of the predicted class's votes + bias = its logit, on every sample"))
    return out
