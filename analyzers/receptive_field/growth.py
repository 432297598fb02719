"""Luo et al. (2016) growth law: on n stacked 3x3 convolutions the ERF spread grows like sqrt(n),
while the theoretical RF (2n + 1) grows like n.

For each depth n the stack is built ``draws`` times with independent weights; the draws run as the
groups of one grouped convolution, so one forward/backward serves them all. The input has side
2n + 3, so the centre unit's theoretical RF (2n + 1) fits with one pixel of margin.

* ``random``: zero-mean Gaussian weights (Kaiming scale), map = E[(dy/dx)^2] over draws and input
  channels. For a linear stack the variance propagates as an n-fold convolution of the uniform
  3x3 box, so sigma = sqrt(2n/3) per axis in expectation.
* ``uniform``: every weight 1/(9C), linear: the map dy/dx is exactly the n-fold box convolution
  and sigma = sqrt(2n/3) exactly (an analytic ground truth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from analyzers.receptive_field.erf import axis_std

ACTIVATIONS = ("linear", "relu", "tanh")


def _act(name: str):
    return {"linear": lambda h: h, "relu": F.relu, "tanh": torch.tanh}[name]


@dataclass(frozen=True)
class Stack:
    """One family of stacked 3x3 convolutions: ``channels`` per layer, ``draws`` independent weight draws
    (groups of one grouped convolution), ``activation`` in ACTIVATIONS, ``weights`` "random" | "uniform"."""

    channels: int = 2
    draws: int = 1
    activation: str = "linear"
    weights: str = "random"


def stack_map(depth: int, stack: Stack, gen: torch.Generator, dilation_at: int = -1) -> np.ndarray:
    """ERF map (side, side) float64 of one depth, averaged over ``stack.draws`` random stacks.

    ``dilation_at`` >= 0 makes that layer a dilation-2 3x3 conv (the control that must widen the ERF).
    """
    channels, draws, activation, weights = stack.channels, stack.draws, stack.activation, stack.weights
    side = 2 * depth + 3 + (2 if dilation_at >= 0 else 0)
    g_in = draws * channels
    x = torch.randn((1, g_in, side, side), generator=gen, dtype=torch.float64).requires_grad_(True)
    act, h = _act(activation), x
    gain = math.sqrt(2.0) if activation == "relu" else 1.0
    for layer in range(depth):
        if weights == "uniform":
            w = torch.full((g_in, channels, 3, 3), 1.0 / (9 * channels), dtype=torch.float64)
        else:
            w = torch.randn((g_in, channels, 3, 3), generator=gen, dtype=torch.float64)
            w *= gain / math.sqrt(9 * channels)
        d = 2 if layer == dilation_at else 1
        h = act(F.conv2d(h, w, padding=d, dilation=d, groups=draws))
    c = side // 2
    (g,) = torch.autograd.grad(h[0, :, c, c].sum(), x)
    g = g[0].view(draws, channels, side, side)
    m = g.pow(2).sum(1).mean(0) if weights == "random" else g.sum(1).mean(0)
    return m.cpu().numpy()


def growth_experiment(depths: list[int], stack: Stack, seed: int, ctx=None) -> dict:
    """Measure the ERF spread at every depth and fit sigma = a * n^e on log-log axes.

    Returns depths (D,), sigma (D, 2) px per axis, trf (D,) = 2n+1, exponent e, coefficient a,
    profiles (D, max_side) central rows normalised to peak 1 (zero padded), profile_sides (D,).
    """
    gen = torch.Generator().manual_seed(int(seed))
    sigmas, profiles = [], []
    cost = np.array([d * (2 * d + 3) ** 2 for d in depths], dtype=float)
    done = 0.0
    for d in depths:
        if ctx is not None:
            ctx.check_cancel()
        m = stack_map(d, stack, gen)
        sigmas.append(axis_std(m))
        row = m.sum(0)
        profiles.append(row / row.max() if row.max() > 0 else row)
        done += d * (2 * d + 3) ** 2
        if ctx is not None:
            ctx.progress(0.05 + 0.9 * done / cost.sum(), f"ERF growth: depth {d}")
    sig = np.array(sigmas)
    e, log_a = np.polyfit(np.log(depths), np.log(sig.mean(1)), 1) if len(depths) > 1 else (float("nan"), 0.0)
    width = max(len(p) for p in profiles)
    padded = np.zeros((len(depths), width))
    for i, p in enumerate(profiles):
        off = (width - len(p)) // 2
        padded[i, off:off + len(p)] = p
    return {"depths": np.array(depths, dtype=np.int64), "sigma": sig,
            "trf": 2 * np.array(depths, dtype=np.float64) + 1, "exponent": float(e),
            "coefficient": float(math.exp(log_a)), "profiles": padded,
            "profile_sides": np.array([len(p) for p in profiles], dtype=np.int64)}
