"""Literal references shared by the attribution tests (images and 1-D signals): one sample and one autograd
call at a time, nothing batched, so a batching or target mix-up in the analyzer cannot hide in the reference."""

from __future__ import annotations

import torch
from torch import nn


def logit_grad(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """d f_t(x_i) / d x_i for every sample, one sample and one autograd call at a time."""
    out = []
    for xi, ti in zip(x, t.tolist(), strict=True):
        xi = xi[None].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xi)[0, ti], xi)
        out.append(g[0])
    return torch.stack(out)
