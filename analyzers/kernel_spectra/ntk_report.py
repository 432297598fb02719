"""kernel_spectra's NTK part on a model: choose inputs, build the Gram, check it, compare with initialisation.

Checks (methods digest §4.2, "you are wrong if"): K symmetric PSD (min eigenvalue >= -1e-6 lambda_max);
trace(K) equals sum_i sum_c ||grad_theta f_c(x_i)||^2 computed by plain autograd; the Jacobian-contraction
Gram and the matrix-free Lanczos method agree on the top eigenvalues.
"""

from __future__ import annotations

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers.kernel_spectra.ntk import grad_norms_sq, ntk_gram, ntk_top_eigs, spectrum_slope
from workbench.core import Check
from workbench.core.errors import DataError

PSD_TOL = 1e-6
TRACE_TOL = 1e-4
LANCZOS_TOL = 1e-3
TRACE_SAMPLES = 8


def ntk_inputs(model, data, n: int, seed: int) -> tuple[torch.Tensor, str]:
    """n model-ready inputs: a seeded sample of the card's test split when it has one, else the data batch.

    Returns (x float32 (n', *input_shape) on the model's device, a description of where they came from)."""
    fn = model.card.extra.get("training_data") if model.card.extra else None
    if fn is not None:
        x, _ = fn("test")
        idx = np.sort(np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False))
        src = f"{len(idx)} samples of the {model.card.dataset} test split (seed {seed})"
        return torch.as_tensor(np.asarray(x)[idx], dtype=torch.float32, device=model.device), src
    if data is None or data.x.shape[0] < 2:
        raise DataError(f"the NTK needs at least 2 inputs and {model.card.id} has no built-in data set",
                        "give --data with several samples, e.g. skimage:chelsea,coffee,astronaut,camera")
    x = data.x[:n].float()
    return x, f"{x.shape[0]} samples of {data.data_id or 'the data batch'}"


def _init_model(model, seed: int):
    """The same architecture at its seeded initialisation (a fresh module, the shared one is not touched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        init = model.card.build()
    return init.to(model.device).eval()


def _gram_stats(k: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Descending eigenvalues of the symmetrised Gram, relative asymmetry, min/max eigenvalue ratio."""
    asym = float(np.linalg.norm(k - k.T) / max(np.linalg.norm(k), 1e-300))
    eig = np.linalg.eigvalsh((k + k.T) / 2)[::-1]
    return eig, asym, float(eig[-1] / eig[0]) if eig[0] > 0 else 0.0


def analyse_ntk(model, data, cfg, ctx, out: Findings) -> None:
    """Empirical NTK spectrum of the model (and of its initialisation) on n inputs, added to ``out``."""
    arrays, metrics, checks, info = out.arrays, out.metrics, out.checks, out.info
    module = model.module
    x, src = ntk_inputs(model, data, cfg.n, ctx.seed)
    n = x.shape[0]
    info.update(ntk_inputs=src, ntk_output=cfg.ntk_output, ntk_method=cfg.ntk_method, ntk_n=n)
    ctx.progress(0.72, f"NTK on {n} inputs")
    if cfg.ntk_method == "lanczos":
        top, count = ntk_top_eigs(module, x, cfg.lanczos_k, output=cfg.ntk_output, seed=ctx.seed)
        arrays["ntk_eigs"] = top
        metrics.update(ntk_top_eig=float(top[0]), ntk_matvecs=float(count))
    else:
        k = ntk_gram(module, x, output=cfg.ntk_output, budget_mb=cfg.ntk_budget_mb, progress=ctx.sub(0.72, 0.84))
        eig, asym, min_ratio = _gram_stats(k)
        m = min(n, TRACE_SAMPLES)
        ref = grad_norms_sq(module, x[:m], output=cfg.ntk_output)
        trace_err = float(abs(np.trace(k[:m, :m]) - ref.sum()) / max(ref.sum(), 1e-300))
        arrays.update(ntk_eigs=eig, ntk_cumtrace=np.cumsum(np.clip(eig, 0, None)) / max(eig.clip(0).sum(), 1e-300))
        metrics.update(ntk_top_eig=float(eig[0]), ntk_trace=float(np.trace(k)), ntk_trace_check=trace_err,
                       ntk_symmetry_error=asym, ntk_min_eig_ratio=min_ratio,
                       ntk_effective_rank=float(eig.clip(0).sum() / eig[0]) if eig[0] > 0 else 0.0,
                       ntk_spectrum_slope=spectrum_slope(eig))
        checks.append(Check("ntk_psd", min_ratio >= -PSD_TOL and asym < PSD_TOL, min_ratio, -PSD_TOL,
                            "the NTK Gram is symmetric positive semi-definite (min eigenvalue / max)"))
        checks.append(Check("ntk_trace_identity", trace_err < TRACE_TOL, trace_err, TRACE_TOL,
                            f"trace of K over {m} inputs vs sum of squared parameter-gradient norms by autograd"))
        if cfg.ntk_method == "both":
            _lanczos_check(module, x, k, cfg, ctx, out)
    if model.card.trained and cfg.ntk_compare_init:
        ctx.progress(0.93, "NTK at initialisation")
        init = _init_model(model, ctx.seed)
        if cfg.ntk_method == "lanczos":
            e0, _ = ntk_top_eigs(init, x, cfg.lanczos_k, output=cfg.ntk_output, seed=ctx.seed)
        else:
            e0 = _gram_stats(ntk_gram(init, x, output=cfg.ntk_output, budget_mb=cfg.ntk_budget_mb))[0]
            metrics["ntk_spectrum_slope_init"] = spectrum_slope(e0)
        arrays["ntk_eigs_init"] = e0
        metrics["ntk_top_eig_init"] = float(e0[0])


def _lanczos_check(module, x, k, cfg, ctx, out: Findings) -> None:
    """Top eigenvalues by Lanczos on NTK-vector products vs the Gram's (k: (n, n) float64), on the first
    lanczos_n inputs of x (n, ...); added to ``out``."""
    arrays, metrics, checks = out.arrays, out.metrics, out.checks
    m = min(x.shape[0], cfg.lanczos_n)
    kk = min(cfg.lanczos_k, m - 1)
    ctx.progress(0.86, f"Lanczos cross-check on {m} inputs")
    top, count = ntk_top_eigs(module, x[:m], kk, output=cfg.ntk_output, seed=ctx.seed)
    ref = np.linalg.eigvalsh((k[:m, :m] + k[:m, :m].T) / 2)[::-1][:kk]
    err = float(np.max(np.abs(top - ref)) / max(ref[0], 1e-300))
    arrays.update(ntk_lanczos_top=top, ntk_lanczos_ref=ref)
    metrics.update(ntk_lanczos_rel_err=err, ntk_matvecs=float(count))
    checks.append(Check("ntk_methods_agree", err < LANCZOS_TOL, err, LANCZOS_TOL,
                        f"top {kk} eigenvalues on {m} inputs: Lanczos (NTK-vector products, {count} of them) vs "
                        "the Jacobian-contraction Gram, max |difference| / lambda_max"))
