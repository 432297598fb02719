"""kernel_spectra on a model: per-layer singular values, frequency responses, ESDs and the Lipschitz bound.

Everything here reads the weights (float64 numpy copies); the shared module is only run once with hooks
(inside ``removable``) to learn each layer's input size, and its parameters are never written.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from analyzers._shared.findings import Findings
from analyzers.kernel_spectra.conv import (
    dense_conv_matrix,
    dense_singular_values,
    fft_singular_values,
    filter_response,
    filter_spectra,
    top_singular_value,
)
from analyzers.kernel_spectra.esd import FLAGS, UNRELIABLE, analyse_weight
from analyzers.kernel_spectra.layers import bn_scale, discover, lipschitz_bound
from analyzers.kernel_spectra.ntk_report import analyse_ntk
from workbench.core import Check
from workbench.core.errors import UnsupportedModelError

HIST_BINS = 60
DENSE_MAX_ENTRIES = 4 * 10**7
DENSE_TOL = 1e-6
MAX_FILTERS = 16


def _tuple(v, nd: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _conv_apply(mod, scale: torch.Tensor | None):
    """x -> the layer's linear part (no bias), with its own padding, stride, dilation, groups, in float64;
    ``scale`` (c_out,) multiplies the output channels (a folded BatchNorm)."""
    w = mod.weight.detach().double()
    if scale is not None:
        w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    nd = w.dim() - 2
    conv = F.conv1d if nd == 1 else F.conv2d
    pad_mode = getattr(mod, "padding_mode", "zeros")
    padding = mod.padding

    def apply(x):
        if pad_mode != "zeros" and not isinstance(padding, str):
            pads = [p for p in reversed(_tuple(padding, nd)) for _ in range(2)]
            return conv(F.pad(x, pads, mode=pad_mode), w, stride=mod.stride, dilation=mod.dilation,
                        groups=mod.groups)
        return conv(x, w, stride=mod.stride, padding=padding, dilation=mod.dilation, groups=mod.groups)

    return apply


def _conv_layer(info, mod, bn, cfg, seed: int) -> dict:
    """FFT spectrum (circular), exact top value with the real padding (layers up to exact_max_dim inputs),
    BN-folded top value (exact, or the FFT value of the folded kernel on larger layers), dense check."""
    w = mod.weight.detach().cpu().double().numpy()
    nd = w.ndim - 2
    size = info.input_size
    args = (_tuple(mod.stride, nd), _tuple(mod.dilation, nd), mod.groups)
    fft = fft_singular_values(w, size, *args)
    shape = (mod.in_channels, *size)
    scale = bn_scale(bn).cpu() if bn is not None else None
    exact = math.prod(shape) <= cfg.exact_max_dim
    if exact:
        sig_zero = top_singular_value(_conv_apply(mod, None), shape, iters=cfg.norm_iters, seed=seed)
        sig_fold = sig_zero if bn is None else top_singular_value(_conv_apply(mod, scale), shape,
                                                                  iters=cfg.norm_iters, seed=seed)
    else:  # too large for the Lanczos reference: circular FFT values (an estimate, labelled as such)
        sig_zero = -1.0
        folded = w if scale is None else w * scale.numpy().reshape(-1, *([1] * (w.ndim - 1)))
        sig_fold = float(fft["values"][-1]) if scale is None else float(fft_singular_values(folded, size, *args)
                                                                        ["values"][-1])
    out = {"fft": fft, "sigma_fft": float(fft["values"][-1]), "sigma_zero": sig_zero, "sigma_folded": sig_fold,
           "circular": getattr(mod, "padding_mode", "zeros") == "circular", "dense_err": -1.0, "exact": exact}
    n_in = mod.in_channels * math.prod(size)
    n_out = mod.out_channels * math.prod(fft["grid"])
    if fft["exact"] and 0 < min(n_in, n_out) <= cfg.dense_check_max and n_in * n_out <= DENSE_MAX_ENTRIES:
        dense = dense_singular_values(dense_conv_matrix(w, size, _tuple(mod.stride, nd), _tuple(mod.dilation, nd),
                                                        mod.groups))
        dense = np.sort(dense)[-fft["values"].size:]
        out["dense_err"] = float(np.abs(dense - fft["values"]).max() / max(dense[-1], 1e-300))
    return out


def _sv_hist(fft_vals: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Shared log10(sigma) bin edges (B+1,) and per-layer counts (C, B) of every conv layer's singular values."""
    lo = min(np.log10(max(v[v > 0].min(), 1e-8)) if (v > 0).any() else -8 for v in fft_vals)
    hi = max(np.log10(max(v[-1], 1e-8)) for v in fft_vals)
    edges = np.linspace(math.floor(lo * 4) / 4, math.ceil(hi * 4) / 4 + 0.25, HIST_BINS + 1)
    counts = [np.histogram(np.log10(np.maximum(v, 1e-12)), edges)[0].astype(np.float64) for v in fft_vals]
    return edges, np.stack(counts)


def _weights_part(model, cfg, ctx, disc, out: Findings) -> None:
    """Singular values, frequency responses and the Lipschitz bound, added to ``out``."""
    arrays, metrics, checks, info = out.arrays, out.metrics, out.checks, out.info
    module = model.module
    mods = dict(module.named_modules())
    convs = [li for li in disc.layers if li.kind == "conv"]
    rows, sigma, folds, fft_vals = [], {}, {}, []
    for i, li in enumerate(disc.layers):
        ctx.progress(0.05 + 0.45 * i / max(1, len(disc.layers)), f"singular values {li.name}")
        if li.kind == "linear":
            s = float(np.linalg.norm(li.module.weight.detach().cpu().double().numpy(), 2))
            sigma[li.name] = s
            rows.append({"sigma_fft": s, "sigma_zero": s, "sigma_folded": s, "dense_err": -1.0, "circular": True,
                         "exact": True})
            continue
        bn = mods.get(li.bn) if li.bn else None
        r = _conv_layer(li, li.module, bn, cfg, ctx.seed)
        if bn is not None:
            folds[li.name] = li.bn
        sigma[li.name] = r["sigma_folded"]
        fft_vals.append(r["fft"]["values"])
        arrays[f"svmap_{len(fft_vals) - 1}"] = r["fft"]["sigma_max_map"].astype(np.float32)
        rows.append(r)
    col = lambda k: np.array([r[k] for r in rows], dtype=np.float64)  # noqa: E731
    arrays.update(layer_sigma_fft=col("sigma_fft"), layer_sigma_zero=col("sigma_zero"),
                  layer_sigma_folded=col("sigma_folded"), layer_dense_err=col("dense_err"),
                  layer_is_conv=np.array([li.kind == "conv" for li in disc.layers], dtype=np.int8))
    if fft_vals:
        arrays["sv_hist_edges"], arrays["sv_hist"] = _sv_hist(fft_vals)
    bound, certified, note = lipschitz_bound(module, sigma, folds, disc.shapes)
    estimated = [li.name for li, r in zip(disc.layers, rows, strict=True) if not r["exact"]]
    if estimated:
        certified = False
        note += (f"; {len(estimated)} layer(s) above exact_max_dim use circular FFT values, so this is an "
                 "estimate, not a certified bound")
    metrics.update(lipschitz_bound=bound, log10_lipschitz_bound=math.log10(bound) if bound > 0 else -300.0,
                   lipschitz_certified=float(certified))
    info.update(lipschitz_note=note, folds=folds)
    checked = [r["dense_err"] for r in rows if r["dense_err"] >= 0]
    if checked:
        err = float(max(checked))
        metrics["fft_vs_dense_max_error"] = err
        checks.append(Check("fft_matches_dense", err < DENSE_TOL, err, DENSE_TOL,
                            f"FFT singular values vs the dense circular operator's SVD on {len(checked)} "
                            "small layer(s), max |difference| / sigma_max"))
    info["conv_layers"] = [li.name for li in convs]
    info["padding"] = [("circular (exact)" if r["circular"] else "zero padding: FFT values approximate")
                       + ("" if r["exact"] else "; exact value not computed (layer > exact_max_dim)")
                       + ("" if r["fft"]["exact"] else "; stride does not divide the input: FFT on the next multiple")
                       for r in rows if "fft" in r]


def _temporal(w: np.ndarray, kind: str) -> np.ndarray:
    """Signals (signal1d, eeg) filter along time, the last axis: a Conv2d kernel (c_out, c_in, kh, kw) of an EEG
    net (electrodes x time) becomes kh temporal filters per input channel, (c_out, c_in * kh, kw)."""
    if kind == "image2d" or w.ndim != 4:
        return w
    return w.reshape(w.shape[0], w.shape[1] * w.shape[2], w.shape[3])


def _frequency_part(card, convs, cfg, out: Findings) -> None:
    """Filter frequency responses per conv layer; Hz for signals when the card has a sampling rate."""
    arrays, info = out.arrays, out.info
    if not convs:
        return
    weights = [_temporal(li.module.weight.detach().cpu().double().numpy(), card.kind) for li in convs]
    # an FFT shorter than a kernel would crop it: grow nfft to the longest kernel (one size for all layers)
    nfft = max(cfg.nfft, 2 ** math.ceil(math.log2(max(max(w.shape[2:]) for w in weights))))
    resp = [filter_response(w, nfft) for w in weights]
    arrays["freq_radial"] = np.stack([r["radial"] for r in resp])
    arrays["freq_radial_cpsample"] = resp[0]["radial_freq"]
    arrays["freq_band_energy"] = np.stack([r["band_energy"] for r in resp])
    n0 = card.input_shape[-1]
    fs = float(card.sampling_rate or 0.0)
    # a layer deeper than a stride sees a slower signal: its sampling rate is fs * (its input length / n0)
    arrays["layer_fs"] = np.array([fs * li.input_size[-1] / n0 if fs else 0.0 for li in convs])
    for j, w in enumerate(weights):
        if max(w.shape[2:]) > 1:
            filt, spec = filter_spectra(w, nfft, MAX_FILTERS)
            arrays[f"filters_{j}"], arrays[f"filter_spectra_{j}"] = filt, spec
    info.update(sampling_rate=fs, nfft=nfft)


def _esd_part(disc, cfg, ctx, out: Findings) -> None:
    """Per-layer ESD, power-law fit, metrics, flags and the shuffled-weights control, added to ``out``."""
    arrays, metrics, checks, info = out.arrays, out.metrics, out.checks, out.info
    rng = np.random.default_rng(ctx.seed)
    res = []
    for i, li in enumerate(disc.layers):
        ctx.progress(0.5 + 0.2 * i / max(1, len(disc.layers)), f"ESD {li.name}")
        res.append(analyse_weight(li.module.weight.detach().cpu().numpy(), min_evals=cfg.min_evals,
                                  max_evals=cfg.max_evals, rng=rng))
    for key in ("evals", "rand_evals"):
        arrays[f"esd_{key}"] = np.concatenate([r[key] for r in res]).astype(np.float64)
        arrays[f"esd_{key}_offsets"] = np.cumsum([0] + [r[key].size for r in res]).astype(np.int64)
    for key in ("alpha", "xmin", "D", "n_tail", "sigma"):
        arrays[f"esd_{key}"] = np.array([r["fit"][key] for r in res], dtype=np.float64)
    for key in ("alpha_weighted", "log_alpha_norm", "log_norm", "log_spectral_norm", "lambda_max", "stable_rank"):
        arrays[f"esd_{key}"] = np.array([r["metrics"][key] for r in res], dtype=np.float64)
    arrays["esd_flag"] = np.array([r["flag"] for r in res], dtype=np.int8)
    arrays["esd_rand_alpha"] = np.array([r["rand_alpha"] if r["rand_ok"] else 0.0 for r in res])
    arrays["esd_NM"] = np.array([[r["N"], r["M"]] for r in res], dtype=np.int64)
    fitted = [r for r in res if r["fit"]["ok"]]
    info["esd_flags"] = list(FLAGS)
    checks.append(Check("esd_layers_fitted", bool(fitted), float(len(fitted)), 1.0,
                        f"layers with a power-law fit out of {len(res)} (others: too few eigenvalues or failed)"))
    reliable = [r for r in fitted if r["flag"] != UNRELIABLE]
    metrics["esd_layers_unreliable"] = float(len(fitted) - len(reliable))
    if fitted:
        mean_of = reliable or fitted  # unreliable fits count only when no layer has enough eigenvalues
        info["mean_alpha_over"] = "reliable fits" if reliable else "unreliable fits only (few eigenvalues)"
        metrics.update(mean_alpha=float(np.mean([r["fit"]["alpha"] for r in mean_of])),
                       mean_alpha_weighted=float(np.mean([r["metrics"]["alpha_weighted"] for r in mean_of])),
                       layers_over_trained=float(sum(r["flag"] == 1 for r in res)),
                       layers_under_trained=float(sum(r["flag"] == 2 for r in res)))
        rand = [r["rand_alpha"] for r in fitted if r["rand_ok"]]
        if rand:
            metrics["mean_alpha_randomized"] = float(np.mean(rand))
    metrics["esd_layers_fitted"] = float(len(fitted))


def analyse_model(model, data, cfg, ctx) -> tuple[dict, list, dict, dict]:
    """All model analyses the config asks for. Returns (metrics, checks, arrays, info)."""
    module, card = model.module, model.card
    parts = [p.strip() for p in cfg.parts.split(",")]
    ctx.progress(0.02, "finding layers")
    disc = discover(module, tuple(card.input_shape), model.device)
    if not disc.layers:
        raise UnsupportedModelError(f"{card.id} has no Conv1d, Conv2d or Linear layer", "pick a CNN from the zoo")
    out = Findings()
    out.info.update({"mode": "model", "layers": [li.name for li in disc.layers],
            "layer_kinds": [li.kind for li in disc.layers],
            "input_sizes": [list(li.input_size) for li in disc.layers], "parts": parts, "kind": card.kind,
            "trained": bool(card.trained), "model_title": card.title})
    if "singular_values" in parts:
        _weights_part(model, cfg, ctx, disc, out)
    if "frequency" in parts:
        _frequency_part(card, [li for li in disc.layers if li.kind == "conv"], cfg, out)
    if "esd" in parts:
        _esd_part(disc, cfg, ctx, out)
    if cfg.ntk:
        analyse_ntk(model, data, cfg, ctx, out)
    return out.metrics, out.checks, out.arrays, out.info
