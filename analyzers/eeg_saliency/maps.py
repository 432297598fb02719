"""Saliency maps of Cui et al.'s interpretable EEG CNN: the paper's CAM variant, LRP (zennit) and
Integrated Gradients (captum), all (N, 30, 384) float32 over channels x time.

The network (models.architectures.EEGInterpretableCNN): ``pointwise`` Conv1d(30 -> 16, k=1), ``expand``
(map i reads virtual channel i // d), ``depthwise`` Conv1d(32, k=64, groups=32), ``relu``, ``bn``,
global average pool, ``fc``. Nothing here changes the given module: BatchNorm is applied as an
explicit per-channel affine (``scale``, ``shift``), computed either from the frozen population
statistics or from the statistics of the analysed batch (the paper's behaviour), and LRP / IG run
on a private "canonical" copy in which that affine is folded into ``fc`` (exact, because global
average pooling is linear), so every perturbed or baseline input sees the same normalisation.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from workbench.core.errors import UnsupportedModelError

PARTS = ("pointwise", "expand", "depthwise", "relu", "bn", "fc")
IG_CHUNK = 256  # path points per forward: larger batches run slower on a CPU (memory-bound depthwise backward)


def is_layout(module: nn.Module) -> bool:
    """Whether ``module`` has Cui et al.'s interpretable-CNN layout (else analyzers/eeg_saliency/generic.py)."""
    return all(hasattr(module, p) for p in PARTS) and isinstance(getattr(module, "depthwise", None), nn.Conv1d) \
        and isinstance(getattr(module, "pointwise", None), nn.Conv1d)


def check_layout(module: nn.Module) -> int:
    """The depth multiplier d of an interpretable-CNN layout; UnsupportedModelError for other models."""
    missing = [p for p in PARTS if not hasattr(module, p)]
    if missing or not isinstance(module.depthwise, nn.Conv1d) or not isinstance(module.pointwise, nn.Conv1d):
        raise UnsupportedModelError(f"eeg_saliency needs Cui et al.'s interpretable CNN layout "
                                    f"(missing {', '.join(missing) or 'Conv1d layers'})",
                                    "use eeg_compact.synth or a model built by EEGInterpretableCNN")
    return module.depthwise.out_channels // module.pointwise.out_channels


def pre_bn(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Z: the depthwise output before ReLU, (N, 32, T - 63)."""
    return module.depthwise(module.expand(module.pointwise(x)))


@torch.no_grad()
def bn_affine(module: nn.Module, x: torch.Tensor, mode: str, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift), each (32,), so that BN(a) = scale * a + shift.

    mode "frozen": the population statistics stored in ``bn``; "batch": the mean and biased variance
    of ReLU(Z) over every window and time step of ``x`` (N, 30, T), as the paper's BatchNorm does when
    it is given ``x`` as one batch.
    """
    bn = module.bn
    if mode == "frozen":
        mean, var = bn.running_mean, bn.running_var
    else:
        s = ss = 0.0
        count = 0
        for part in x.split(chunk):
            a = torch.relu(pre_bn(module, part)).double()
            s, ss, count = s + a.sum((0, 2)), ss + (a * a).sum((0, 2)), count + a.shape[0] * a.shape[2]
        mean = (s / count).float()
        var = (ss / count - (s / count) ** 2).clamp_min(0).float()
    inv = 1.0 / torch.sqrt(var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(inv)
    beta = bn.bias if bn.affine else torch.zeros_like(inv)
    return (gamma * inv).detach().clone(), (beta - gamma * mean * inv).detach().clone()


@torch.no_grad()
def forward_parts(module: nn.Module, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor):
    """(Z (N, 32, L) pre-ReLU, A (N, 32, L) after BN, logits (N, classes)) with the given BN affine."""
    z = pre_bn(module, x)
    a = scale[None, :, None] * torch.relu(z) + shift[None, :, None]
    return z, a, module.fc(a.mean(2))


def gaussian_kernel(radius: int) -> torch.Tensor:
    """Truncated Gaussian, sigma = radius, offsets |k| < radius, amplitude 1 / (sigma sqrt(2 pi)); (2r-1,)."""
    k = torch.arange(-(radius - 1), radius, dtype=torch.float32)
    return torch.exp(-0.5 * (k / radius) ** 2) / (radius * math.sqrt(2 * math.pi))


@torch.no_grad()
def cam_heatmap(module: nn.Module, x: torch.Tensor, z: torch.Tensor, a: torch.Tensor, target: torch.Tensor,
                top_n: int = 100, radius: int = 32) -> torch.Tensor:
    """Cui et al.'s sample-wise CAM variant (paper eqs. 12-15). x (n, 30, T) model input, z / a (n, 32, L),
    target (n,) class -> H (n, 30, T) float32 >= 0 (before the mean/RMS display normalisation).

    1. CAM[i, t] = w_fc[c, i] * A[i, t]; keep the ``top_n`` largest entries per window.
    2. Drop entries where sign(Z) != sign(A).
    3. Back-map each (i, t) to the input channel p = argmax_ch sign(Z) * W_pw[i // d, ch] *
       sum_tau W_dw[i, tau] x[ch, t + tau], at the centre q = t + K // 2 of the kernel's window.
    4. H = fixation counts at (p, q) convolved along time with a truncated Gaussian (sigma = radius).
    """
    n, ch, t_len = x.shape
    d = check_layout(module)
    w_dw = module.depthwise.weight[:, 0]  # (32, K)
    w_pw = module.pointwise.weight[:, :, 0]  # (16, 30)
    kernel = w_dw.shape[1]
    cam = module.fc.weight[target][:, :, None] * a  # (n, 32, L)
    length = cam.shape[2]
    k = min(top_n, cam[0].numel())
    idx = cam.flatten(1).topk(k, dim=1).indices  # (n, k)
    maps, times = idx // length, idx % length
    rows = torch.arange(n, device=x.device)[:, None]
    zsel, asel = z[rows, maps, times], a[rows, maps, times]
    keep = (torch.sign(zsel) == torch.sign(asel)).float()
    windows = x.unfold(2, kernel, 1)[rows, :, times]  # (n, k, 30, K)
    filtered = torch.einsum("nkcj,nkj->nkc", windows, w_dw[maps])
    contrib = filtered * w_pw[maps // d] * torch.sign(zsel)[..., None]
    p = contrib.argmax(2)  # (n, k) input channel
    q = times + kernel // 2
    fix = torch.zeros(n, ch * t_len, device=x.device)
    fix.scatter_add_(1, p * t_len + q, keep)
    g = gaussian_kernel(radius).to(x.dtype)
    h = torch.nn.functional.conv1d(fix.view(n * ch, 1, t_len), g.view(1, 1, -1), padding=radius - 1)
    return h.view(n, ch, t_len)


def rms_normalise(h: np.ndarray) -> np.ndarray:
    """The paper's display normalisation (H - mean) / sqrt(mean(H^2)) per window; (…, C, T)."""
    h = np.asarray(h, dtype=np.float64)
    mean = h.mean(axis=(-2, -1), keepdims=True)
    rms = np.sqrt((h * h).mean(axis=(-2, -1), keepdims=True))
    return ((h - mean) / np.where(rms > 0, rms, 1.0)).astype(np.float32)


def canonical_model(module: nn.Module, scale: torch.Tensor, shift: torch.Tensor, contrast: bool = False) -> nn.Module:
    """A private copy without BatchNorm: pointwise, expand, depthwise, ReLU, average pool, flatten, fc'
    with fc'(m) = W diag(scale) m + (W shift + b) = fc(scale * m + shift). Same logits as the model
    with that BN affine; parameters are detached copies (the shared model is never touched).

    ``contrast``: output k becomes z_k minus the mean of the other logits (two classes: z_k - z_other), the
    quantity the softmax decision depends on. Adding any g(x) to every logit changes no prediction, yet it
    changes a map of the raw logit: explaining the contrast removes that arbitrary common part."""
    w, b = module.fc.weight * scale[None, :], module.fc.weight @ shift + module.fc.bias
    if contrast and w.shape[0] > 1:
        k = w.shape[0]
        w = w - (w.sum(0, keepdim=True) - w) / (k - 1)
        b = b - (b.sum() - b) / (k - 1)
    fc = nn.Linear(module.fc.in_features, module.fc.out_features).to(module.fc.weight.device)
    with torch.no_grad():
        fc.weight.copy_(w)
        fc.bias.copy_(b)
    canon = nn.Sequential(copy.deepcopy(module.pointwise), copy.deepcopy(module.expand),
                          copy.deepcopy(module.depthwise), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), fc)
    for prm in canon.parameters():
        prm.requires_grad_(False)
    return canon.eval()


def relative_stabilizer(epsilon: float):
    """LRP-epsilon denominator z + eps * sign(z) (sign(0) = +1) with eps = ``epsilon`` x the root mean square of
    the layer's output over each window (channels x time), plus 1e-9 so that epsilon = 0 (LRP-0) never divides
    by zero. Per window, so a window's map never depends on its batch. Hand-written because zennit's
    ``Stabilizer(norm_scale=True)`` has no floor (0 / 0 at epsilon = 0)."""

    def fn(z: torch.Tensor) -> torch.Tensor:
        rms = z.detach().pow(2).flatten(1).mean(1).sqrt().view(-1, *([1] * (z.dim() - 1)))
        e = epsilon * rms + 1e-9
        return torch.where(z >= 0, z + e, z - e)

    return fn


def lrp_maps(canon: nn.Module, x: torch.Tensor, target: torch.Tensor, epsilon: float,
             relative: bool = False) -> torch.Tensor:
    """LRP-epsilon (zennit) on the canonical model: relevance (n, 30, T) of the target output, started
    at the logit's value so the relevance sums to about the logit (biases and epsilon absorb the rest).

    Rules: epsilon for the (signed-input) convolutions, LRP-0 (epsilon 1e-6) for the dense layer (Montavon
    et al. 2019: epsilon in the middle layers, LRP-0 at the top), Norm (proportional) for the average pool,
    Pass for ReLU; the channel copy of ``expand`` passes relevance by its gradient (a sum). ``relative``:
    ``epsilon`` is a multiple of the RMS of each convolution's output per window (see
    :func:`relative_stabilizer`), else an absolute value. With epsilon -> 0 this is LRP-0, which on this
    ReLU network equals Gradient x Input exactly (Ancona et al. 2018).
    """
    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite
    from zennit.rules import Epsilon, Norm, Pass
    from zennit.types import Activation, AvgPool, Convolution, Linear

    conv = Epsilon(relative_stabilizer(epsilon)) if relative else Epsilon(epsilon)
    composite = LayerMapComposite([(Activation, Pass()), (AvgPool, Norm()), (Convolution, conv),
                                   (Linear, Epsilon(1e-6))])
    xin = x.detach().clone().requires_grad_(True)
    with Gradient(model=canon, composite=composite) as attributor:
        def start(out: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(out).scatter(1, target[:, None], out.gather(1, target[:, None]))

        _, rel = attributor(xin, start)
    return rel.detach().float()


def ig_gradients(canon: nn.Module, x: torch.Tensor, target: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Path-averaged gradients G (n, 30, T) of the target logit along the straight path from the zero
    baseline (captum IntegratedGradients, multiply_by_inputs=False, Gauss-Legendre). IG = x * G."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(canon, multiply_by_inputs=False)
    g = ig.attribute(x.detach(), baselines=torch.zeros_like(x), target=target, n_steps=n_steps,
                     internal_batch_size=max(x.shape[0], min(x.shape[0] * n_steps, IG_CHUNK)))
    return g.detach().float()


def band_split(x: np.ndarray, sfreq: float, bands: dict) -> np.ndarray:
    """Split signals (N, C, T) into band-limited parts (N, B + 1, C, T) with an FFT mask per band; the
    last part is the rest (everything outside the bands), so the parts sum exactly to x."""
    spec = np.fft.rfft(x, axis=-1)
    f = np.fft.rfftfreq(x.shape[-1], 1.0 / sfreq)
    parts = [np.fft.irfft(spec * ((f >= lo) & (f < hi)), n=x.shape[-1], axis=-1) for lo, hi in bands.values()]
    parts.append(x - np.sum(parts, axis=0))
    return np.stack(parts, axis=1)


def band_relevance(x: np.ndarray, grads: np.ndarray, sfreq: float, bands: dict) -> np.ndarray:
    """IG relevance of each frequency band: sum over channels and time of x_band * G; (N, B + 1) in logit
    units. Exact decomposition: the parts sum to the IG total f(x) - f(0) (up to IG's own error)."""
    parts = band_split(np.asarray(x, np.float64), sfreq, bands)
    return np.einsum("nbct,nct->nb", parts, np.asarray(grads, np.float64)).astype(np.float32)


def filter_responses(module: nn.Module, scale: torch.Tensor, sfreq: float, nfft: int = 512):
    """Frequency responses of the depthwise temporal filters and their class contrast.

    Returns freqs (F,) Hz, gain (32, F) linear |DFT| of each 64-tap kernel (zero-padded to ``nfft``),
    and contrast (32,) = (w_fc[drowsy, i] - w_fc[alert, i]) * bn_scale_i: how much one unit of map i's
    activation pushes the logit difference towards "drowsy" (the last class)."""
    w = module.depthwise.weight[:, 0].detach().double().cpu().numpy()
    gain = np.abs(np.fft.rfft(w, n=nfft, axis=1))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sfreq)
    wfc = module.fc.weight.detach().double().cpu().numpy()
    contrast = (wfc[-1] - wfc[0]) * scale.detach().double().cpu().numpy()
    return freqs.astype(np.float32), gain.astype(np.float32), contrast.astype(np.float32)
