"""A small user CNN (8x8 digits-sized input), defined here as a user would in a notebook, and a snapshot of
everything about a module the workbench must leave alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.core.hooks import count_hooks


class UserCNN(nn.Module):
    """(N, 1, 8, 8) -> (N, 10) logits; ReLU(inplace=True) on purpose (common in user code)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.features(x))


def snapshot(module: nn.Module) -> dict:
    """Weights (copied), tensor identities and version counters, grad flags, modes, devices, hook count."""
    return {"values": {k: v.detach().clone() for k, v in module.state_dict().items()},
            "ids": {k: (id(v), v._version) for k, v in module.state_dict(keep_vars=True).items()},
            "grad": [p.requires_grad for p in module.parameters()],
            "modes": [m.training for m in module.modules()],
            "devices": sorted({str(p.device) for p in module.parameters()}),
            "hooks": count_hooks(module),
            "inplace": [getattr(m, "inplace", None) for m in module.modules()]}


def assert_unchanged(module: nn.Module, before: dict) -> None:
    after = snapshot(module)
    assert after["ids"] == before["ids"] and after["grad"] == before["grad"]
    assert after["modes"] == before["modes"] and after["devices"] == before["devices"]
    assert after["hooks"] == before["hooks"] and after["inplace"] == before["inplace"]
    assert all(torch.equal(before["values"][k], v) for k, v in after["values"].items())


@pytest.fixture
def user_cnn() -> UserCNN:
    torch.manual_seed(0)
    return UserCNN().train()  # left in train mode, as after a training loop


@pytest.fixture
def digits_batch():
    """16 sklearn digits as the user's model-ready tensor (N, 1, 8, 8) in [0, 1], with labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.images[:16, None] / 16.0, dtype=torch.float32), torch.tensor(d.target[:16])
