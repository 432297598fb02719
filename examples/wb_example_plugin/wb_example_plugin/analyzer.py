"""channel_stats: does the data a model sees match the statistics it was trained on?

Every BatchNorm layer stores the running mean and variance of its input over the training data.
The batch mean m and standard deviation s of the same input on the chosen data are compared with
them per channel: the standardized shift z = (m - running_mean) / sqrt(running_var + eps) and the
scale ratio ln(s / sqrt(running_var + eps)). On data like the training data both are near 0; a
forgotten normalization, another value range or a shifted data set makes them large (Ioffe &
Szegedy 2015 define the statistics; Schneider et al. 2020 use the same drift to detect and correct
covariate shift).

Check: the median |z| and median |ln ratio| over all channels stay under their thresholds (the
check's value is the larger of the two as a fraction of its threshold, so 1 is the limit). Control: the
same model with its convolution and linear weights re-initialized (BatchNorm statistics kept)
feeds the BatchNorm layers activations the statistics were never measured on, so it must fail the
check; a check the control passes would say nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from wb_example_plugin.result import ChannelStatsResult
from workbench.core import Analyzer, Check, option, register_analyzer
from workbench.core.errors import ConfigError, DataError, UnsupportedModelError
from workbench.core.hooks import removable

CHUNK = 64  # inputs per forward pass: the cancel/progress granularity


@dataclass(frozen=True)
class ChannelStatsConfig:
    layers: str = option("", "BatchNorm modules to study, comma-separated module names; empty = every "
                             "BatchNorm layer with running statistics")
    max_shift: float = option(0.25, "largest median |z| over all channels, z = (batch mean - running mean) "
                                    "/ running std, for the data to count as matching the training statistics",
                              min=0.01, max=10.0)
    max_log_scale: float = option(0.4, "largest median |ln(batch std / running std)| over all channels "
                                       "(0.4 is a factor of 1.5)", min=0.01, max=10.0)
    min_samples: int = option(16, "fewest inputs accepted: the batch statistics of fewer inputs are too "
                                  "noisy to compare (use a data id such as digits:test:64)", min=1, max=100000)
    control: bool = option(True, "also run the control: the model with re-initialized convolution and "
                                 "linear weights (BatchNorm statistics kept), which must fail the check")
    seed: int = option(0, "seed of the control's re-initialized weights", min=0, max=2**31 - 1)


def bn_layers(module: nn.Module, names: str) -> list[tuple[str, nn.Module]]:
    """The BatchNorm modules (any dimension) that keep running statistics, in registration order."""
    found = [(n, m) for n, m in module.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]
    wanted = [w.strip() for w in names.split(",") if w.strip()]
    if wanted:
        unknown = sorted(set(wanted) - {n for n, _ in found})
        if unknown:
            raise ConfigError(f"layers {', '.join(unknown)} are not BatchNorm modules with running statistics",
                              f"choose among {', '.join(n for n, _ in found) or 'none'}")
        found = [(n, m) for n, m in found if n in wanted]
    if not found:
        raise UnsupportedModelError("the model has no BatchNorm layer with running statistics",
                                    "pick a model with BatchNorm, e.g. digits_vgg.sk or mnist1d_cnn.default")
    return found


def batch_moments(module: nn.Module, layers: list[tuple[str, nn.Module]], x: torch.Tensor,
                  progress) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-channel mean and (population) standard deviation of each layer's input over the whole batch.

    ``x``: model-ready float32 tensor (N, C, ...). Returns name -> (mean (C,), std (C,)) float64,
    computed from float64 sums over every axis except the channel axis 1. ``progress(fraction)``
    is called after each chunk and may raise to cancel; hooks are removed on every exit."""
    sums = {n: [0.0, 0.0, 0] for n, _ in layers}

    def record(name):
        def hook(_mod, args):
            a = args[0].detach().to(torch.float64).transpose(0, 1).reshape(args[0].shape[1], -1)
            s = sums[name]
            s[0] = s[0] + a.sum(1)
            s[1] = s[1] + (a * a).sum(1)
            s[2] += a.shape[1]
        return hook

    with removable([]) as handles, torch.no_grad():
        handles.extend(m.register_forward_pre_hook(record(n)) for n, m in layers)
        for i in range(0, x.shape[0], CHUNK):
            module(x[i:i + CHUNK])
            progress(min(1.0, (i + CHUNK) / x.shape[0]))
    out = {}
    for n, (s1, s2, count) in sums.items():
        mean = (s1 / count).cpu().numpy()
        var = np.maximum((s2 / count).cpu().numpy() - mean ** 2, 0.0)
        out[n] = (mean, np.sqrt(var))
    return out


def drift(layers: list[tuple[str, nn.Module]], moments: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated over layers: z (K,), ln scale ratio (K,), layer index (K,) int32, K = all channels."""
    zs, logs, idx = [], [], []
    for j, (n, m) in enumerate(layers):
        mean, std = moments[n]
        run_std = np.sqrt(m.running_var.detach().double().cpu().numpy() + m.eps)
        zs.append((mean - m.running_mean.detach().double().cpu().numpy()) / run_std)
        logs.append(np.log(np.maximum(std, 1e-12) / run_std))
        idx.append(np.full(mean.shape, j, dtype=np.int32))
    return np.concatenate(zs), np.concatenate(logs), np.concatenate(idx)


def randomized(module: nn.Module, seed: int) -> nn.Module:
    """A copy with every convolution and linear layer re-initialized (seeded); BatchNorm untouched."""
    twin = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in twin.modules():
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
                m.reset_parameters()
    return twin.eval()


@register_analyzer
class ChannelStats(Analyzer):
    name = "channel_stats"
    title = "Channel statistics vs BatchNorm"
    description = ("Per-channel mean and spread of what enters every BatchNorm layer on your data, against the "
                   "running statistics stored in training: catches wrong preprocessing and data shift.")
    paper = "Ioffe & Szegedy 2015; Schneider et al. 2020 (example plug-in: wb_example_plugin)"
    Config = ChannelStatsConfig
    result_class = ChannelStatsResult
    supports = ("image2d", "signal1d", "eeg")
    mutates_model = False  # hooks only; the control works on a deep copy
    #: the conformance suite checks that a weight-randomized model breaks this check (as the control does)
    headline_check = "bn_stats_match"
    headline_check = "bn_stats_match"  # conformance: random weights feed BatchNorm other statistics

    def run(self, model, data, config, ctx):
        x = data.x
        if x.shape[0] < config.min_samples:
            raise DataError(f"channel_stats needs at least {config.min_samples} inputs, got {x.shape[0]}",
                            "use a data id with many samples, e.g. digits:test:64, or lower min_samples")
        layers = bn_layers(model.module, config.layers)
        share = 0.5 if config.control else 1.0

        def progress(offset: float, what: str):
            def step(f: float) -> None:
                ctx.check_cancel()
                ctx.progress(offset + share * f, f"batch statistics ({what})")
            return step

        z, log_scale, layer_idx = drift(layers, batch_moments(model.module, layers, x, progress(0.0, "data")))
        shift, scale = float(np.median(np.abs(z))), float(np.median(np.abs(log_scale)))
        worst = _worst(shift, scale, config)
        ok = worst <= 1.0
        metrics = {"median_abs_shift": shift, "median_abs_log_scale": scale, "channels": float(z.size),
                   "samples": float(x.shape[0])}
        arrays = {"z": z, "log_scale": log_scale, "layer": layer_idx}
        checks = [Check("bn_stats_match", ok, worst, 1.0,
                        f"median |z| {shift:.3f} (max {config.max_shift}), median |ln scale| {scale:.3f} "
                        f"(max {config.max_log_scale}): the data {'matches' if ok else 'does not match'} "
                        "the training statistics")]
        if config.control:
            checks.append(_control(model.module, x, config, progress(0.5, "control"), metrics, arrays))
        return ChannelStatsResult(self.name, metrics=metrics, checks=checks, arrays=arrays,
                                  info={"layers": [n for n, _ in layers]})


def _worst(shift: float, scale: float, config: ChannelStatsConfig) -> float:
    """The larger of the two medians as a fraction of its threshold: above 1 the data does not match."""
    return max(shift / config.max_shift, scale / config.max_log_scale)


def _control(module: nn.Module, x: torch.Tensor, config: ChannelStatsConfig, progress, metrics: dict,
             arrays: dict) -> Check:
    """Run the re-initialized twin; add its figures' arrays and metrics; the check passes when it breaks."""
    twin = randomized(module, config.seed)
    twin_layers = bn_layers(twin, config.layers)
    cz, clog, _ = drift(twin_layers, batch_moments(twin, twin_layers, x, progress))
    shift, scale = float(np.median(np.abs(cz))), float(np.median(np.abs(clog)))
    worst = _worst(shift, scale, config)
    broken = worst > 1.0
    metrics.update(control_median_abs_shift=shift, control_median_abs_log_scale=scale)
    arrays.update(control_z=cz, control_log_scale=clog)
    return Check("control_breaks_match", broken, worst, 1.0,
                 f"re-initialized weights give median |z| {shift:.3f}, median |ln scale| {scale:.3f}: the "
                 "control " + ("fails the check, as it must" if broken else "passes the check, so the check "
                                                                             "says nothing"))
