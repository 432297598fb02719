"""Networks, data and training loops of the transferability experiment (Yosinski et al. 2014).

Every network has ``N_LAYERS`` = 5 transferable layers (the cut points n = 1..5) and a classifier
``head`` that is never copied (each half has its own classes):

- mnist1d, input (N, 1, 40) float32 raw signal: conv1 (32 ch, k5) -> 40, conv2 (32, k3, stride 2) -> 20,
  conv3 (64, k3, stride 2) -> 10, conv4 (64, k3) -> (N, 64, 10); fc5 flatten -> 128; head 128 -> classes.
- digits, input (N, 1, 8, 8) float32 in [0, 1]: conv1 (32, k3) -> 8x8, conv2 (32, stride 2) -> 4x4,
  conv3 (64) -> 4x4, conv4 (64, stride 2) -> (N, 64, 2, 2); fc5 flatten -> 128; head.

Each conv layer is Conv-BN-ReLU and fc5 is Linear-BN-ReLU: a "layer" includes its BatchNorm statistics,
so copying a layer copies them and freezing a layer freezes them (frozen layers run in eval mode).
This mirrors the zoo's 1-D CNN, which this floor-2 package may not import.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.core.errors import ConfigError
from workbench.data.registry import dataset_arrays

DATASETS = ("mnist1d", "digits")
N_LAYERS = 5
LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "fc5")
HIDDEN = 128
ARCH_VERSION = "transfer-nets-v1"  # part of every cache key: bump when the nets or the loop change


class TransferNet(nn.Module):
    """``blocks``: the 5 transferable layers; ``head``: linear classifier. ``forward(h, start=n)`` runs
    the network from layer n+1 on, taking ``h`` as the output of layer n (n = 0: the raw input)."""

    def __init__(self, blocks: list[nn.Module], n_classes: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(HIDDEN, n_classes)

    def forward(self, h: torch.Tensor, start: int = 0) -> torch.Tensor:
        for b in self.blocks[start:]:
            h = b(h)
        return self.head(h)

    def trunk(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Output of layer n for the raw input x (n = 0: x itself)."""
        for b in self.blocks[:n]:
            x = b(x)
        return x

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the 5 transferable layers, each (N, C, T) / (N, C, H, W) / (N, 128)."""
        out = []
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return out


def _conv_block(dim: int, c_in: int, c_out: int, k: int, stride: int) -> nn.Sequential:
    conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
    return nn.Sequential(conv(c_in, c_out, k, stride=stride, padding=k // 2, bias=False), bn(c_out), nn.ReLU())


def _fc_block(n_in: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, HIDDEN, bias=False), nn.BatchNorm1d(HIDDEN), nn.ReLU())


def build_net(dataset: str, n_classes: int, seed: int) -> TransferNet:
    """A freshly initialized network, seeded without touching the global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if dataset == "mnist1d":
            spec, dim, flat = [(1, 32, 5, 1), (32, 32, 3, 2), (32, 64, 3, 2), (64, 64, 3, 1)], 1, 64 * 10
        elif dataset == "digits":
            spec, dim, flat = [(1, 32, 3, 1), (32, 32, 3, 2), (32, 64, 3, 1), (64, 64, 3, 2)], 2, 64 * 2 * 2
        else:
            raise ConfigError(f"dataset {dataset!r} has no transfer network", f"use one of {', '.join(DATASETS)}")
        blocks = [_conv_block(dim, *s) for s in spec] + [_fc_block(flat)]
        return TransferNet(blocks, n_classes)


# ---- data -----------------------------------------------------------------------------------------

def load_arrays(dataset: str, num_samples: int) -> dict[str, np.ndarray]:
    """Raw train/test arrays with a channel axis: x (N, 1, 40) or (N, 1, 8, 8) float32, y (N,) int64."""
    if dataset not in DATASETS:
        raise ConfigError(f"dataset {dataset!r} is not supported by the transfer experiment",
                          f"use one of {', '.join(DATASETS)}")
    kw = {"num_samples": int(num_samples)} if dataset == "mnist1d" else {}
    out = {}
    for split in ("train", "test"):
        x, y = dataset_arrays(dataset, split, **kw)
        out[f"x_{split}"] = np.ascontiguousarray(x[:, None], dtype=np.float32)
        out[f"y_{split}"] = y.astype(np.int64)
    return out


def task_tensors(arrays: dict[str, np.ndarray], classes: tuple[int, ...], device: str) -> dict[str, torch.Tensor]:
    """The sub-task on ``classes``: inputs of those classes, labels remapped to 0..len(classes)-1."""
    remap = np.full(int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    out = {}
    for split in ("train", "test"):
        keep = np.isin(arrays[f"y_{split}"], classes)
        out[f"x_{split}"] = torch.from_numpy(arrays[f"x_{split}"][keep]).to(device)
        out[f"y_{split}"] = torch.from_numpy(remap[arrays[f"y_{split}"][keep]]).to(device)
    return out


# ---- training -------------------------------------------------------------------------------------

def set_frozen(net: TransferNet, n: int) -> None:
    """Layers 1..n get no gradient; the rest train."""
    for i, b in enumerate(net.blocks):
        for p in b.parameters():
            p.requires_grad_(i >= n)
    for p in net.head.parameters():
        p.requires_grad_(True)


@dataclass(frozen=True)
class TrainPlan:
    """How one network is trained: Adam at ``lr`` with a per-step cosine decay, ``epochs`` passes of
    ``batch_size`` in an order drawn from ``seed``. Layers 1..``frozen`` are frozen; ``precomputed``: the
    inputs are already the output of layer ``frozen``; ``freeze_bn=False`` is only a test control."""

    epochs: int
    lr: float
    batch_size: int
    seed: int
    frozen: int = 0
    precomputed: bool = False
    freeze_bn: bool = True


def train(net: TransferNet, inputs: torch.Tensor, y: torch.Tensor, plan: TrainPlan,
          on_epoch: Callable[[int], None] | None = None) -> None:
    """Cross-entropy training of ``net`` as ``plan`` says; ``on_epoch(epoch)`` after every pass.

    ``inputs``: the raw inputs, or (``plan.precomputed``) the cached output of frozen layer ``plan.frozen``
    (N, ...) float32; ``y`` (N,) int64. Frozen layers get no gradient and stay in eval mode (BatchNorm
    statistics stay; ``freeze_bn=False`` must break the frozen-layer hash). Without ``precomputed`` the
    frozen trunk is re-run under no_grad on every batch.
    """
    frozen, epochs, batch_size = plan.frozen, plan.epochs, plan.batch_size
    set_frozen(net, frozen)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=plan.lr)
    steps_per_epoch = math.ceil(len(y) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(plan.seed)
    loss_fn = nn.CrossEntropyLoss()
    for ep in range(epochs):
        net.train()
        if plan.freeze_bn:
            for b in net.blocks[:frozen]:
                b.eval()
        order = torch.randperm(len(y), generator=gen).to(y.device)
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples in train mode
                continue
            h = inputs[idx]
            if frozen and not plan.precomputed:
                with torch.no_grad():
                    h = net.trunk(h, frozen)
            loss = loss_fn(net(h, start=frozen), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if on_epoch is not None:
            on_epoch(ep)
    net.eval()
    set_frozen(net, 0)


@torch.no_grad()
def predict(net: TransferNet, x: torch.Tensor, start: int = 0, batch: int = 1024) -> torch.Tensor:
    """Logits (N, classes) float32 in eval mode."""
    net.eval()
    return torch.cat([net(x[i:i + batch], start=start) for i in range(0, len(x), batch)])


def accuracy(net: TransferNet, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1]."""
    return float((predict(net, x).argmax(1) == y).float().mean())


@torch.no_grad()
def trunk_features(net: TransferNet, x: torch.Tensor, n: int, batch: int = 1024) -> torch.Tensor:
    """Output of layer n (eval mode) for all of x: what a frozen-trunk cell trains on."""
    net.eval()
    return torch.cat([net.trunk(x[i:i + batch], n) for i in range(0, len(x), batch)])


@torch.no_grad()
def calibrate_bn(net: TransferNet, x: torch.Tensor, n: int, batch: int = 512) -> None:
    """Set the BatchNorm statistics of layers 1..n to the data's (cumulative average over one pass),
    keeping the random weights: random features at a sensible scale."""
    mods = [m for b in net.blocks[:n] for m in b.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in mods:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for i in range(0, len(x), batch):
        net.trunk(x[i:i + batch], n)
    for m in mods:
        m.momentum = 0.1
    net.eval()


def layer_hash(net: TransferNet, n: int) -> str:
    """sha256 over the weights and BatchNorm buffers (running mean/var, batch count) of layers 1..n."""
    h = hashlib.sha256()
    for i, b in enumerate(net.blocks[:n]):
        for name, t in sorted(b.state_dict().items()):
            h.update(f"{i}.{name}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def state_to_cpu(net: TransferNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def copy_layers(dst: TransferNet, src_state: dict[str, torch.Tensor], n: int) -> None:
    """Copy layers 1..n (weights and BatchNorm statistics) from a source state dict into dst."""
    own = dst.state_dict()
    prefixes = tuple(f"blocks.{i}." for i in range(n))
    picked = {k: v for k, v in src_state.items() if k.startswith(prefixes)}
    own.update({k: v.to(own[k].device) for k, v in picked.items()})
    dst.load_state_dict(own)
