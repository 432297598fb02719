"""The EEG architectures people use, from braindecode (EEGNet, ShallowFBCSPNet, Deep4Net), as zoo cards.

braindecode downloads its pretrained weights from a hub, so here they are architectures only: ``make zoo``
trains each on the synthetic drowsiness EEG (subjects 1-8, tested on 9-11: the same windows, channels and
scaling as ``eeg_compact.synth``), or the user loads their own safetensors onto the card
(``workbench zoo add braindecode.eegnet FILE``). Built with braindecode's own classes (never re-written
here), so a model trained with braindecode elsewhere loads as is when its sizes match.

Training: Adam with braindecode's usual settings for these nets on small EEG sets (lr 1e-3, batch 32,
cross-entropy), seeded; BatchNorm keeps its running statistics (standard eval-mode BatchNorm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads when a network is built, not when the zoo lists its cards
    from torch import nn

#: card id -> braindecode class name and its constructor arguments beyond the data's sizes
ARCHITECTURES = {
    "braindecode.eegnet": ("EEGNet", {}),
    "braindecode.shallow_fbcsp": ("ShallowFBCSPNet", {"final_conv_length": "auto"}),
    "braindecode.deep4": ("Deep4Net", {"final_conv_length": "auto"}),
}
N_CHANS, N_TIMES, SFREQ, N_OUTPUTS = 30, 384, 128.0, 2


def braindecode_version() -> str:
    from importlib.metadata import version

    return version("braindecode")


def build(name: str) -> nn.Module:
    """A fresh braindecode network ``name`` (a class name in ARCHITECTURES) for 30 x 384 windows, 2 classes."""
    import warnings

    kwargs = next(k for n, k in ARCHITECTURES.values() if n == name)
    with warnings.catch_warnings():  # braindecode warns on import (mne montage names) and about unused options
        warnings.simplefilter("ignore")
        import braindecode.models as bm

        return getattr(bm, name)(n_chans=N_CHANS, n_outputs=N_OUTPUTS, n_times=N_TIMES, sfreq=SFREQ, **kwargs)


def fit(x: np.ndarray, y: np.ndarray, *, architecture: str, seed: int = 0, epochs: int = 20, batch_size: int = 32,
        lr: float = 1e-3, weight_decay: float = 0.0, progress: Callable[[float, str], None] | None = None,
        **_: object) -> nn.Module:
    """Train a fresh braindecode net (class name ``architecture``) on model-ready windows; eval mode on return.
    Does not move the global RNG streams."""
    import torch

    from models.eeg_fit import train_loop

    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(architecture)
        train_loop(model, xt, yt, gen=torch.Generator().manual_seed(seed), epochs=epochs, batch_size=batch_size,
                   lr=lr, weight_decay=weight_decay, progress=progress)
    return model.eval()
