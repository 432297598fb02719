"""LinearScope: a CNN frozen at its input x0 is an affine map y = A(x0) x + c(x0) (the linear interpreter).

Reference: P. Navarrete Michelini, H. Liu, Y. Lu, X. Jiang, "A Tour of Convolutional Networks
Guided by Linear Interpreters", ICCV 2019 (arXiv:1908.05168). No public code exists; this is an
implementation from the paper's description (rules in :mod:`analyzers.linear_scope.ops`).

Every non-linear unit is frozen at x0 (ReLU masks, max-pool indices, norm statistics, a documented
gate for smooth activations); the frozen network replays exactly f(x0) at x1 = x0 and is affine
in x1. Rows of A come from batched VJPs, columns from batched JVPs, c(x0) and its exact split over
the layers' biases from bias-only replays, and the top singular triplets from ARPACK on the
matrix-free operator. A is never materialized. For ReLU / max-pool / eval-BN networks A equals
the input Jacobian and c(x0) = f(x0) - J x0.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers.linear_scope import views as views
from analyzers.linear_scope.dataset import set_pass
from analyzers.linear_scope.products import Products, top_singular
from analyzers.linear_scope.quality import quality_findings
from analyzers.linear_scope.replay import Replay, trace
from analyzers.linear_scope.result import LinearScopeResult
from workbench.core import Analyzer, Check, option, register_analyzer

TOL = {"float32": {"replay": 1e-4, "adjoint": 1e-5, "affine": 1e-4, "identity": 1e-4, "svd": 1e-3},
       "float64": {"replay": 1e-10, "adjoint": 1e-10, "affine": 1e-10, "identity": 1e-10, "svd": 1e-6}}
RANDOM_VECTORS = 32


def auto_chunk(chunk: int, device: str) -> int:
    """Rows / columns per vmap call: measured best about 4-8 on 2 CPU cores (sr_cnn.x2 at 64x64: chunk 8
    5.4 ms/row, chunk 64 12 ms/row, a plain loop 6.5 ms/row); large batches pay off on a GPU."""
    return chunk if chunk > 0 else (64 if str(device).startswith("cuda") else 8)


@dataclass(frozen=True)
class LinearScopeConfig:
    gate: str = option("ratio", "smooth gates (sigmoid, tanh, GELU, SiLU, ...): ratio = secant through phi(0), "
                                "G = (phi(z0) - phi(0)) / z0 (the mask phi(z0)/z0 when phi(0) = 0); tangent = "
                                "phi'(z0), A is then the Jacobian. ReLU / max-pool nets are the same under both",
                       choices=("ratio", "tangent"))
    dtype: str = option("float32", "replay precision (float64 for reference-grade exactness)",
                        choices=("float32", "float64"))
    top_classes: int = option(5, "classifier: classes shown as vote maps (highest logits)", min=1, max=20)
    rows: str = option("", "image-to-image: output pixels 'row,col;row,col' whose rows A^T e_j (what the pixel "
                           "looks at) are shown; empty = the centre")
    columns: str = option("", "image-to-image: input pixels 'row,col;...' whose columns A e_i (what the pixel "
                              "spreads to) are shown; empty = the centre")
    svd_k: int = option(8, "top singular triplets of A by ARPACK on the matrix-free operator; 0 = skip",
                        min=0, max=64)
    svd_tol: float = option(1e-4, "ARPACK relative tolerance of the singular values", min=0.0, max=0.1)
    chunk: int = option(0, "rows / columns per batched VJP / JVP call; 0 = automatic (8 on the CPU, where "
                           "small batches keep conv backward in cache, 64 on CUDA)", min=0, max=1024)
    freeze: bool = option(True, "freeze every unit at x0; false = a broken control that recomputes ReLU masks, "
                                "max-pool indices and norm statistics from x1, so the affine check must fail")
    quality: bool = option(False, "quality panel of every sample's vote map (classifiers): deletion/insertion AUC "
                                  "against a random map, Gini, effective support (2 x (1/quality_step + 1) "
                                  "forwards per sample)", label="Quality panel")
    quality_step: float = option(0.05, "quality panel: fraction of the pixels removed/inserted per step",
                                 min=0.01, max=0.5)
    quality_road: bool = option(False, "quality panel: add ROAD curves (Rong et al. 2022: removed pixels imputed "
                                       "from their neighbours plus noise, not set to a baseline)")
    quality_randomization: bool = option(False, "quality panel: add eMPRT (Hedstrom et al. 2023, fully randomized "
                                                "model) and the random-logit test (Sixt et al. 2020); two more "
                                                "frozen replays per sample")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both vanish)."""
    den = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) / den if den > 0 else float((a - b).abs().max())


def _check(name: str, value: float, limit: float, message: str) -> Check:
    return Check(name, bool(np.isfinite(value) and value <= limit), float(value), limit, message)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


@dataclass
class Frozen:
    """The network frozen at x0 and what every view reads: ``y_real`` (1, *out) the real output,
    ``y_rep`` the replay at x0, ``lin`` = A x0 and ``c`` = c(x0) (*out each, the pass dtype); ``tol`` the
    tolerances of that dtype."""

    replay: Replay
    prod: Products
    y_real: torch.Tensor
    y_rep: torch.Tensor
    lin: torch.Tensor
    c: torch.Tensor
    config: LinearScopeConfig
    tol: dict


@register_analyzer
class LinearScope(Analyzer):
    name = "linear_scope"
    title = "LinearScope (linear interpreters)"
    description = ("Freezes every ReLU mask, max-pool index and norm statistic at the input so the network "
                   "replays exactly as y = A x + c: per-class pixel votes and bias shares for classifiers; rows, "
                   "columns, the bias image and the singular-vector basis for super-resolution and denoising.")
    paper = "Navarrete Michelini, Liu, Lu & Jiang, ICCV 2019 (arXiv:1908.05168)"
    Config = LinearScopeConfig
    result_class = LinearScopeResult
    page = "linear_scope.py"  # hand-written page: clickable pixel explorer for image-to-image models
    supports = ("image2d",)
    libraries = ("scipy",)
    smoke_config = {"dtype": "float64", "svd_k": 2, "top_classes": 2}
    headline_check = None
    headline_reason = ("its checks are exactness identities of the frozen replay (replay, adjoint, affine, votes, "
                       "bias split, A = Jacobian) that hold for any weights")
    exclusive = True  # traces with torch.fx / make_fx (process-global patching)
    tasks = ("classification", "image2image")
    mutates_model = False
    # a data id naming many samples runs in chunks (workbench/runtime/dataset_run.py): the full views of each
    # chunk's first sample are kept from the first chunk ("first"), the set_* arrays run over every sample
    per_sample = True
    sample_arrays = ("set_*", "quality_*_*")  # the quality panel's per-sample arrays; not quality_fractions (S,)
    aggregate = {"*_error": "max", "svd_residual": "max", "quality_nonfinite_*": "sum", "quality_*": "mean",
                 "*": "first"}

    def run(self, model, data, config, ctx):
        """Trace at the first sample, check the interpreter, then the classifier or image-to-image views."""
        dt = torch.float64 if config.dtype == "float64" else torch.float32
        module = model.module if dt == torch.float32 else copy.deepcopy(model.module).to(dt)
        x0 = data.x[:1].to(dt)
        ctx.progress(0.02, "tracing the network at x0")
        replay = trace(module, x0, gate=config.gate, freeze=config.freeze)
        classifier = model.card.task == "classification"
        config = dataclasses.replace(config, chunk=auto_chunk(config.chunk, str(x0.device)))
        with torch.no_grad():
            y_real, y_rep = _real_forward(module, x0), replay(x0)
            lin, c = replay.linear(x0)[0], replay(torch.zeros_like(x0))[0]
        f = Frozen(replay, Products(replay), y_real, y_rep, lin, c, config, TOL[config.dtype])
        ctx.progress(0.1, "exactness checks")
        out = self._exactness(f, ctx.seed)
        out.arrays.update(input_display=data.display[0], x0=_np(x0[0]), bias=_np(c), linear_part=_np(lin))
        ctx.progress(0.2, "rows of A")
        out.merge(self._classifier(f, model.card) if classifier else self._image2image(f))
        out.checks.append(_decomposition(out.arrays, out.metrics, replay.n_bias, f.tol))
        out.merge(self._jacobian(f, model.module if dt == torch.float32 else module))
        if config.svd_k > 0:
            out.merge(self._svd(f, ctx, classifier))
        out.info["all_class_names"] = list(model.card.class_names or [])
        # every sample (one for a single run): what a data-set run merges, see analyzers/linear_scope/dataset.py
        out.merge(set_pass(module, data.x.to(dt), data.ids, config, classifier, f.tol, ctx.sub(0.93, 0.99), replay))
        if config.quality:
            out.merge(quality_findings(module, data.x.to(dt), out.arrays, config, ctx, classifier))
        out.info.update(mode="classifier" if classifier else "image2image", ids=data.ids[:1],
                        bias_names=replay.bias_names, units=_unit_summary(replay), fallbacks=replay.fallbacks,
                        gate=config.gate, frozen=config.freeze, piecewise_linear=replay.piecewise_linear,
                        dtype=config.dtype,  # the replay's precision: provenance reports it
                        trained=bool(model.card.trained), in_shape=list(replay.in_shape),
                        out_shape=list(replay.out_shape))
        return out.result(LinearScopeResult, "linear_scope")

    @staticmethod
    def _exactness(f: Frozen, seed: int) -> Findings:
        """Replay exactness, the adjoint identity and affinity."""
        replay, prod, tol = f.replay, f.prod, f.tol
        gen = torch.Generator(device="cpu").manual_seed(seed)
        dt, dev = replay.x0.dtype, replay.x0.device
        u = torch.randn(1, *replay.out_shape, generator=gen, dtype=dt).to(dev)
        v = torch.randn(1, *replay.in_shape, generator=gen, dtype=dt).to(dev)
        av, atu = prod.matmat(v)[0], prod.rmatmat(u)[0]
        a, b = float((u[0] * av).sum()), float((atu * v[0]).sum())
        adjoint = abs(a - b) / max(float(atu.norm() * v.norm()), 1e-300)
        with torch.no_grad():
            y1, y2, c_full = replay(v), replay(2 * v), replay(torch.zeros_like(v))
        # relative to the output's scale, not to |y(v) - c|: float32 cancellation against a large c is not a defect
        affine = float((y2 - c_full - 2 * (y1 - c_full)).abs().max()) / max(
            float(y2.abs().max()), float(c_full.abs().max()), 1e-300)
        metrics = {"replay_rel_error": _rel(f.y_rep, f.y_real), "adjoint_rel_error": adjoint,
                   "affine_rel_error": affine, "bias_groups": float(replay.n_bias),
                   "frozen_units": float(len(replay.units)), "linear_plus_bias_error": _rel(f.lin + f.c, f.y_real[0])}
        checks = [
            _check("replay_exact", metrics["replay_rel_error"], tol["replay"],
                   "the frozen network reproduces f(x0): max |A x0 + c - f(x0)| / max |f(x0)|"),
            _check("adjoint", adjoint, tol["adjoint"],
                   "<u, A v> = <A^T u, v> for random u, v (JVP against VJP), relative to |A^T u| |v|"),
            _check("affine", affine, tol["affine"], "y(2v) - c = 2 (y(v) - c) for a random v: the replay is affine "
                                                    "in its input (error relative to max |y(2v)|, |c|)"),
        ]
        return Findings(metrics, checks)

    @staticmethod
    def _classifier(f: Frozen, card) -> Findings:
        """Vote maps of the top classes, the vote identity and the bias shares."""
        replay, prod, c, logits = f.replay, f.prod, f.c, f.y_real[0]
        k = min(f.config.top_classes, logits.numel())
        top = torch.argsort(logits.reshape(-1), descending=True)[:k]
        rows = prod.rows(top, chunk=f.config.chunk)
        votes = (rows * replay.x0).sum(1)
        flat_c, flat_logit = c.reshape(-1), logits.reshape(-1)
        identity = float((votes.flatten(1).sum(1) + flat_c[top] - flat_logit[top]).abs().max())
        identity /= max(float(flat_logit.abs().max()), 1e-300)
        share = views.bias_share(_np(f.lin).reshape(-1), _np(c).reshape(-1))
        votes_np = _np(votes)
        fg = views.foreground(_np(replay.x0[0]))
        names = list(card.class_names)
        out = Findings(arrays={"top": top.cpu().numpy(), "logits": _np(flat_logit), "rows": _np(rows),
                               "votes": votes_np, "bias_share": share, "foreground": fg.astype(np.float32),
                               "bias_by_layer": _np(prod.bias_split(top))},
                       info={"class_names": [names[int(j)] if int(j) < len(names) else str(int(j)) for j in top]})
        out.metrics.update(vote_identity_error=identity, bias_share_top1=float(share[int(top[0])]),
                           bias_top1=float(flat_c[top[0]]), logit_top1=float(flat_logit[top[0]]),
                           votes_top1=float(votes[0].sum()), top1_class=float(top[0]),
                           **views.vote_measures(votes_np[0], fg))
        out.checks.append(_check("vote_identity", identity, f.tol["identity"],
                                 "sum of the vote map + bias term = logit, for every shown class"))
        return out

    @staticmethod
    def _image2image(f: Frozen) -> Findings:
        """Rows and columns at the chosen pixels, the bias image and its share."""
        prod, config, y, c = f.prod, f.config, f.y_real[0], f.c
        out_hw, in_hw = tuple(prod.r.out_shape[-2:]), tuple(prod.r.in_shape[-2:])
        rpix = views.parse_pixels(config.rows, out_hw, "rows")
        cpix = views.parse_pixels(config.columns, in_hw, "columns")
        rows = _np(prod.pixel_rows(rpix, chunk=config.chunk))
        bias_by_layer = _np(prod.bias_terms()[1])
        cols = _np(prod.pixel_columns(cpix, chunk=config.chunk))
        share = views.bias_share(_np(f.lin), _np(c))
        j = np.unravel_index(int(np.argmax(np.abs(_np(y)))), share.shape)
        offset = views.centroid_offset(rows, rpix, out_hw)
        return Findings(
            arrays={"bias_by_layer": bias_by_layer, "output": _np(y), "rows": rows, "columns": cols,
                    "row_pixels": np.array(rpix, dtype=np.int64), "column_pixels": np.array(cpix, dtype=np.int64),
                    "bias_share": share, "row_offset": offset},
            metrics={"bias_share_top1": float(share[j]), "bias_share_mean": float(share.mean()),
                     "bias_abs_mean": float(np.abs(_np(c)).mean()), "output_abs_mean": float(np.abs(_np(y)).mean()),
                     "row_offset_max": float(offset.max())})

    @staticmethod
    def _jacobian(f: Frozen, module) -> Findings:
        """One row of A (the largest output) against autograd on the real network."""
        j = int(torch.argmax(f.y_real.reshape(-1).abs()))
        x = f.replay.x0.clone().requires_grad_(True)
        grad = torch.autograd.grad(_real_forward(module, x).reshape(-1)[j], x)[0]
        err = _rel(f.prod.rows(torch.tensor([j]))[0], grad[0])
        out = Findings(metrics={"jacobian_rel_error": err})
        if f.replay.piecewise_linear:
            out.checks.append(_check("a_equals_jacobian", err, f.tol["replay"] * 10,
                                     "piecewise-linear network: a row of A equals the same row of the input Jacobian"))
        return out

    @staticmethod
    def _svd(f: Frozen, ctx, classifier: bool) -> Findings:
        prod, config = f.prod, f.config
        out = Findings()
        k = min(config.svd_k, min(prod.n_in, prod.n_out) - 1)
        if k < 1:
            return out
        sigma, u, v, calls = top_singular(prod, k, max(config.svd_tol, 1e-12), ctx.seed, ctx.sub(0.3, 0.9))
        ctx.progress(0.92, "checking the singular triplets")
        vt = torch.as_tensor(v, dtype=prod.r.x0.dtype, device=prod.r.x0.device).reshape(k, *prod.r.in_shape)
        av = _np(prod.matmat(vt)).reshape(k, -1)
        resid = float(np.max(np.linalg.norm(av - sigma[:, None] * u, axis=1) / np.maximum(sigma, 1e-300)))
        out.arrays.update(singular_values=sigma, sv_in=v.reshape(k, *prod.r.in_shape),
                          sv_out=u.reshape(k, *prod.r.out_shape))
        out.metrics.update(top_singular_value=float(sigma[0]), svd_residual=resid, svd_products=float(calls))
        out.checks.append(_check("svd_residual", resid, f.tol["svd"], f"|A v - sigma u| / sigma over the top {k} "
                                                                      "triplets (ARPACK, matrix-free)"))
        if not classifier:
            top = views.localization(out.arrays["sv_in"])
            rand = views.random_localization(tuple(prod.r.in_shape), RANDOM_VECTORS, ctx.seed)
            out.arrays.update(sv_localization=top, random_localization=rand)
            out.metrics.update(views.localization_metrics(top, rand))
        return out


def _decomposition(arrays: dict, metrics: dict, n_bias: int, tol: dict) -> Check:
    """The per-group bias terms (``bias_by_layer``) must add up to c(x0) (the top classes' entries)."""
    c = arrays["bias"].reshape(-1)[arrays["top"]] if "top" in arrays else arrays["bias"]
    parts = arrays["bias_by_layer"]
    total = parts.sum(0) if len(parts) else np.zeros_like(c)
    err = float(np.abs(total - c).max() / max(float(np.abs(c).max()), 1e-300)) if np.abs(c).max() > 0 else \
        float(np.abs(total).max())
    metrics["bias_decomposition_error"] = err
    return _check("bias_decomposition", err, tol["identity"], f"the {n_bias} per-layer bias terms add up to c(x0)")


def _real_forward(module, x: torch.Tensor) -> torch.Tensor:
    """The unmodified network's output (first tensor if it returns several)."""
    out = module(x)
    if isinstance(out, (tuple, list)):
        out = next(o for o in out if isinstance(o, torch.Tensor))
    return out


def _unit_summary(replay: Replay) -> list[list]:
    """[[op, rule, count]] of the frozen units."""
    counts: dict[tuple, int] = {}
    for u in replay.units:
        counts[(u["op"], u["rule"])] = counts.get((u["op"], u["rule"]), 0) + 1
    return [[op, rule, n] for (op, rule), n in counts.items()]
