"""Training of the EEG cards: ``make zoo`` and the leave-one-subject-out folds of ``eeg_saliency``.

Cui et al.'s settings (Adam, lr 1e-3, batch 50, 11 epochs, NLL on log-softmax, ``torch.manual_seed(0)``,
no validation set, no early stopping), in float32 on the CPU instead of float64 on CUDA. The
paper's BatchNorm normalises with the statistics of whatever batch it is given, also at test time;
after training we freeze the population statistics of the training windows into ``bn`` (its
running mean / variance), so evaluation is per window and independent of batch composition.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

PAPER = {"epochs": 11, "batch_size": 50, "lr": 1e-3, "weight_decay": 0.0}


@torch.no_grad()
def freeze_batch_statistics(model: nn.Module, x: torch.Tensor, chunk: int = 512) -> nn.Module:
    """Set ``model.bn``'s running mean and (biased) variance to the statistics of its input over all of
    ``x`` (N, 30, 384) (all windows and time steps), i.e. the population the batches were drawn from.
    Returns the model in eval mode."""
    model.eval()
    s = ss = None
    count = 0
    for part in x.split(chunk):
        a = model.relu(model.depthwise(model.expand(model.pointwise(part)))).double()
        s = a.sum((0, 2)) if s is None else s + a.sum((0, 2))
        ss = (a * a).sum((0, 2)) if ss is None else ss + (a * a).sum((0, 2))
        count += a.shape[0] * a.shape[2]
    mean = s / count
    var = (ss / count - mean * mean).clamp_min(0)
    model.bn.running_mean.copy_(mean.float())
    model.bn.running_var.copy_(var.float())
    model.bn.num_batches_tracked.fill_(1)
    return model


def fit(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, *, seed: int = 0, epochs: int = 11,
        batch_size: int = 50, lr: float = 1e-3, weight_decay: float = 0.0, architecture: str = "EEGInterpretableCNN",
        progress: Callable[[float, str], None] | None = None) -> nn.Module:
    """Train a fresh EEG network on model-ready windows ``x`` (N, 30, 384) float32 and labels ``y`` (N,)
    int64 (0 alert, 1 drowsy). ``progress(fraction, message)`` is called after every batch (it may raise
    to cancel). Returns the model in eval mode with frozen BatchNorm statistics. Does not move the
    global RNG streams."""
    from models import architectures

    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(architectures, architecture)()
    train_loop(model, xt, yt, gen=torch.Generator().manual_seed(seed), epochs=epochs, batch_size=batch_size,
               lr=lr, weight_decay=weight_decay, progress=progress)
    return freeze_batch_statistics(model, xt)


def train_loop(model: nn.Module, xt: torch.Tensor, yt: torch.Tensor, *, gen: torch.Generator, epochs: int,
               batch_size: int, lr: float, weight_decay: float,
               progress: Callable[[float, str], None] | None = None) -> nn.Module:
    """Adam on cross-entropy (= NLL on log-softmax), shuffled by ``gen``, batches of one skipped (BatchNorm
    cannot normalise a batch of one window over (N, T) meaningfully); ``progress`` after every batch.
    Shared by the EEG cards here and braindecode's (models/eeg_braindecode.py)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    steps, done = epochs * -(-len(yt) // batch_size), 0
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(yt), generator=gen).split(batch_size):
            if len(batch) < 2:
                continue
            loss = loss_fn(model(xt[batch]), yt[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if progress is not None:
                progress(done / steps, f"epoch {epoch + 1}/{epochs}")
    return model
