"""The training job behind the learning-stop analyzer: optimiser and schedule from the config, a seeded
validation hold-out, one pass per epoch with the monitor on, and per-epoch evaluation.

The loop knows nothing about stopping rules: after every epoch it hands the history to a callback,
which decides whether to stop (the analyzer runs the rules there and publishes live state).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from analyzers.learning_stop.monitor import StdMonitor, train_step

EVAL_BATCH = 512
PAPER_WIDTHS = (32, 64, 128, 256)


class PaperCNN(nn.Module):
    """The plain CNN of the learning-stop paper's code: blocks conv3x3 -> max-pool 2 -> ReLU (no
    BatchNorm), widths 32, 64, 128, 256, as many blocks (up to 4) as halvings fit the input, then a
    linear head. 2-D for input (C, H, W), 1-D for (C, T); output (N, num_classes) logits.
    """

    def __init__(self, input_shape: tuple, num_classes: int) -> None:
        super().__init__()
        conv, pool = (nn.Conv2d, nn.MaxPool2d) if len(input_shape) == 3 else (nn.Conv1d, nn.MaxPool1d)
        c, side = int(input_shape[0]), min(int(s) for s in input_shape[1:])
        blocks: list[nn.Module] = []
        for w in PAPER_WIDTHS:
            if side < 2:
                break
            blocks.append(nn.Sequential(conv(c, w, 3, padding=1), pool(2), nn.ReLU()))
            c, side = w, side // 2
        self.blocks = nn.Sequential(*blocks)
        flat = c
        for s in input_shape[1:]:
            flat *= int(s) // 2 ** len(blocks)
        self.fc = nn.Linear(flat, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(x).flatten(1))


@dataclass
class Splits:
    """Model-ready tensors on the device: x float32 (N, *input_shape), y int64 (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass
class History:
    """What one run recorded. ``alpha``: per-step stds, one (steps, L) float64 array per epoch; the
    rest one float per epoch (losses in nats, accuracies in [0, 1], lr, wall time in s)."""

    alpha: list[np.ndarray] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def mu(self) -> np.ndarray:
        """(E, L) float64: each epoch's mean over steps of each layer's output std (unrounded)."""
        return np.stack([a.mean(0) for a in self.alpha]) if self.alpha else np.zeros((0, 0))


def split_validation(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, class-stratified hold-out: (train indices, validation indices), both sorted int64.
    Each class gives round(fraction * its count) samples (at least 1 when fraction > 0)."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = 0 if fraction <= 0 else min(len(idx) - 1, max(1, round(fraction * len(idx))))
        val.append(rng.permutation(idx)[:k])
    val = np.sort(np.concatenate(val)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(y)), val).astype(np.int64)
    return train, val


def optimizer_factory(name: str, lr: float, momentum: float, weight_decay: float) -> Callable:
    """``make(module) -> Optimizer``: SGD with momentum (the paper's) or Adam, L2 weight decay."""
    def make(module: nn.Module) -> torch.optim.Optimizer:
        if name == "adam":
            return torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
        return torch.optim.SGD(module.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    return make


def lr_at(schedule: str, base: float, epoch: int, max_epochs: int, step: int) -> float:
    """Learning rate for 0-based ``epoch``: constant; step = /10 at step, 2*step, 3*step (three
    decays, the paper's schedule); cosine annealing to 0 over max_epochs."""
    if schedule == "step":
        return base * 0.1 ** min(3, epoch // max(1, step))
    if schedule == "cosine":
        return base * 0.5 * (1.0 + np.cos(np.pi * epoch / max(1, max_epochs)))
    return base


@torch.no_grad()
def evaluate(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy in nats, top-1 accuracy) in eval mode; (0, 0) for an empty set."""
    if len(y) == 0:
        return 0.0, 0.0
    module.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), EVAL_BATCH):
        logits = module(x[i:i + EVAL_BATCH])
        loss += float(nn.functional.cross_entropy(logits, y[i:i + EVAL_BATCH], reduction="sum"))
        correct += int((logits.argmax(1) == y[i:i + EVAL_BATCH]).sum())
    return loss / len(y), correct / len(y)


@dataclass
class _Loop:
    """What every epoch of one training run shares: the module, its optimizer, the shuffling generator
    and the monitor of the watched layers."""

    module: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    mon: StdMonitor


def _one_epoch(loop: _Loop, splits: Splits, batch_size: int, ctx) -> tuple[float, float]:
    """One pass in training mode with the monitor on; returns (mean loss, accuracy) over the pass."""
    module, opt, gen, mon = loop.module, loop.opt, loop.gen, loop.mon
    module.train()
    n = len(splits.y_train)
    perm = torch.randperm(n, generator=gen).to(splits.x_train.device)
    losses, correct = [], []
    mon.active = True
    try:
        for idx in perm.split(batch_size):
            ctx.check_cancel()
            loss, logits = train_step(module, opt, splits.x_train[idx], splits.y_train[idx],
                                      nn.functional.cross_entropy)
            mon.collect()
            losses.append(loss * len(idx))
            correct.append((logits.argmax(1) == splits.y_train[idx]).sum())
    finally:
        mon.active = False
    return float(torch.stack(losses).sum()) / n, float(torch.stack(correct).sum()) / n


def train_watch(module: nn.Module, names: list[str], splits: Splits, cfg, ctx,
                on_epoch: Callable[[History], bool], seed: int) -> History:
    """Train ``module`` in place for up to ``cfg.max_epochs`` epochs, monitoring ``names``.

    cfg needs optimizer, lr, momentum, weight_decay, batch_size, max_epochs, lr_schedule and
    lr_step; ``seed`` drives the shuffling. After each epoch ``on_epoch(history)`` runs; returning
    True ends training there. Hooks are removed on exit, error or cancel.
    """
    opt = optimizer_factory(cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)(module)
    gen = torch.Generator().manual_seed(int(seed))
    hist = History()
    with StdMonitor(module, names) as mon:
        for epoch in range(cfg.max_epochs):
            lr = lr_at(cfg.lr_schedule, cfg.lr, epoch, cfg.max_epochs, cfg.lr_step)
            for g in opt.param_groups:
                g["lr"] = lr
            t0 = time.perf_counter()
            loss, acc = _one_epoch(_Loop(module, opt, gen, mon), splits, cfg.batch_size, ctx)
            hist.alpha.append(mon.drain().numpy())
            hist.epoch_time.append(time.perf_counter() - t0)
            hist.train_loss.append(loss)
            hist.train_acc.append(acc)
            for prefix, x, y in (("val", splits.x_val, splits.y_val), ("test", splits.x_test, splits.y_test)):
                vl, va = evaluate(module, x, y)
                getattr(hist, f"{prefix}_loss").append(vl)
                getattr(hist, f"{prefix}_acc").append(va)
            hist.lr.append(lr)
            if on_epoch(hist):
                break
    module.eval()
    return hist
