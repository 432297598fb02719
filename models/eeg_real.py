"""Zoo cards for EEG networks people use and a real pretrained EEG network (entry point ``eeg_real``).

* ``braindecode.eegnet``, ``braindecode.shallow_fbcsp``: braindecode's EEGNet and ShallowFBCSPNet trained
  by ``make zoo`` on the synthetic drowsiness EEG (models/eeg_braindecode.py; same windows, channels and
  scaling as ``eeg_compact.synth``); ``braindecode.deep4``: Deep4Net, architecture only (seeded random
  weights; load yours with ``workbench zoo add braindecode.deep4 FILE.safetensors``).
* ``iclabel.mne``: ICLabel, the pretrained independent-component classifier that ships with mne-icalabel
  (weights sha256-pinned, ``torch.load(weights_only=True)``), on feature sheets of ICA components
  (``emotiv.ica``: the real Emotiv recording's components; models/eeg_iclabel.py).
"""

from __future__ import annotations

import functools

import numpy as np

from models import eeg_braindecode as eb
from models import eeg_iclabel as ic
from models import preprocess as pp
from models.recipes import RECIPES
from models.weights import load_model, weights_status
from workbench.core.cards import ModelCard, register_card
from workbench.core.eeg_layout import CHANNELS
from workbench.core.errors import DataError, WeightsError

CITE_BRAINDECODE = ("Schirrmeister, R. T. et al. (2017). Deep learning with convolutional neural networks for EEG "
                    "decoding and visualization. Human Brain Mapping 38(11), 5391-5420 (ShallowFBCSPNet, Deep4Net); "
                    "Lawhern, V. J. et al. (2018). EEGNet: a compact convolutional neural network for EEG-based "
                    "brain-computer interfaces. J. Neural Eng. 15, 056013. Implementations: braindecode.")
EEG_CLASSES = ("alert", "drowsy")
_TITLES = {"braindecode.eegnet": "EEGNet (braindecode)", "braindecode.shallow_fbcsp": "ShallowFBCSPNet (braindecode)",
           "braindecode.deep4": "Deep4Net (braindecode)"}
_LAYERS = {"EEGNet": ("conv_separable_point", "conv_spatial", "conv_temporal"),
           "ShallowFBCSPNet": ("conv_time_spat.conv_spat", "conv_time_spat.conv_time"),
           "Deep4Net": ("conv_4", "conv_3", "conv_2", "conv_time_spat.conv_spat")}


def _eeg_training_data(split: str):
    from models.zoo import eeg_training_data

    return eeg_training_data(split)


def _braindecode_card(card_id: str) -> ModelCard:
    name = eb.ARCHITECTURES[card_id][0]
    recipe = RECIPES.get(card_id)
    trained = recipe is not None
    return ModelCard(
        id=card_id, kind="eeg", title=_TITLES[card_id] + ("" if trained else " (untrained)"), architecture=name,
        input_shape=pp.EEG_SHAPE, build=functools.partial(eb.build, name), loader=load_model,
        status=weights_status, preprocess=pp.eeg_preprocess, display=pp.eeg_display,
        weights_source="zoo" if trained else "random", dataset="eeg_synth.drowsy" if trained else "",
        class_names=EEG_CLASSES, default_data="eeg_synth.drowsy", trained=trained,
        recipe=recipe["name"] if trained else "seeded random initialisation (braindecode defaults)",
        seed=recipe["seed"] if trained else 0, layers_of_interest=_LAYERS[name], sampling_rate=eb.SFREQ,
        description=(f"braindecode's {name} for 30 channels x 3 s at 128 Hz, "
                     + ("trained here by make zoo on the synthetic drowsiness EEG (subjects 1-8; test on 9-11)."
                        if trained else "architecture only (braindecode's pretrained weights are downloaded "
                                        "from a hub, which the workbench never does): load yours with "
                                        f"`workbench zoo add {card_id} FILE.safetensors`.")),
        licence="BSD-3-Clause (braindecode architecture); weights Apache-2.0 (trained locally)" if trained
        else "BSD-3-Clause (braindecode architecture)", citation=CITE_BRAINDECODE,
        extra={**({"target_accuracy": recipe["target_accuracy"], "training_data": _eeg_training_data}
                  if trained else {}), "channels": CHANNELS, "package": f"braindecode=={eb.braindecode_version()}"})


def _iclabel_load(card: ModelCard):
    return ic.load_weights(ic.build())


def _iclabel_status(card: ModelCard) -> dict:
    from models.weights import count_params

    out = {"available": False, "sha256": ic.ICLABEL_SHA256, "accuracy": None, "trained": True, "source": "package",
           "params": count_params(card)}
    try:
        sha = ic.file_sha256()
    except (ImportError, OSError) as e:
        return {**out, "note": f"mne-icalabel is not installed ({type(e).__name__}): pip install mne-icalabel==0.10.0"}
    if sha != ic.ICLABEL_SHA256:
        return {**out, "note": "ICLabelNet.pt differs from the pinned file: install mne-icalabel==0.10.0"}
    return {**out, "available": True, "note": "ICLabel weights shipped in mne-icalabel (sha256 pinned)"}


def _sheet(sample) -> np.ndarray:
    arr = np.asarray(sample.array, dtype=np.float32)
    if sample.kind != "image" or arr.shape != ic.SHEET[1:]:
        raise DataError(f"{sample.id!r} is not an ICLabel feature sheet (34 x 100)",
                        "use emotiv.ica components (ICLabel inputs of the real Emotiv recording)")
    if not np.allclose(arr[:32, 32:64], -arr[:32, :32], atol=1e-6):
        raise DataError(f"{sample.id!r}: columns 32-63 of the sheet must hold the negated topomap",
                        "pack mne-icalabel's features with workbench.data.emotiv.pack")
    return arr


def _iclabel_preprocess(sample) -> np.ndarray:
    return _sheet(sample)[None].copy()


def _iclabel_display(sample) -> np.ndarray:
    """The sheet as a picture: each part (topomap, PSD row, autocorrelation row) scaled to [0, 1] on its own."""
    s = _sheet(sample)
    out = np.zeros_like(s)
    for rows, cols in ((slice(0, 32), slice(0, 32)), (slice(0, 32), slice(32, 64)), (slice(32, 33), slice(None)),
                       (slice(33, 34), slice(None))):
        part = s[rows, cols]
        lo, hi = float(part.min()), float(part.max())
        out[rows, cols] = (part - lo) / (hi - lo) if hi > lo else 0.5
    return np.repeat(out[..., None], 3, axis=-1)


def _iclabel_card() -> ModelCard:
    return ModelCard(
        id="iclabel.mne", kind="image2d", title="ICLabel (mne-icalabel, pretrained)", architecture="ICLabelNet",
        input_shape=ic.SHEET, build=ic.build, loader=_iclabel_load, status=_iclabel_status,
        preprocess=_iclabel_preprocess, display=_iclabel_display, weights_source="package",
        dataset="ICLabel training set (EEGLAB, ~200 k components)", class_names=ic.ICLABEL_CLASSES,
        default_data="emotiv.ica:0", trained=True, sha256=ic.ICLABEL_SHA256,
        recipe="trained by the ICLabel authors; weights from mne-icalabel 0.10.0 (ICLabelNet.pt)",
        layers_of_interest=("net.img_conv.conv3", "net.psds_conv.conv3", "net.autocorr_conv.conv3"),
        description="A real pretrained EEG CNN: labels an ICA component as brain, muscle, eye, heart, line noise, "
                    "channel noise or other from its scalp topomap (top-left 32 x 32, its negation beside it), power "
                    "spectrum (row 32) and autocorrelation (row 33), packed as one 34 x 100 sheet. Outputs the mean "
                    "logit of ICLabel's 4 views (ICLabel averages their probabilities; the labels agree on the Emotiv "
                    "components).",
        licence="BSD-3-Clause (mne-icalabel; ICLabel weights)", citation=ic.CITE_ICLABEL,
        # input_layout: analyzers that read the sheet's parts (eeg_saliency) recognise the card by it, not by its id
        extra={"package": "mne-icalabel==0.10.0", "input_layout": "iclabel_sheet"})


def all_cards() -> list[ModelCard]:
    return [_braindecode_card(c) for c in eb.ARCHITECTURES] + [_iclabel_card()]


try:
    CARDS: tuple[ModelCard, ...] = tuple(register_card(c) for c in all_cards())
except (ImportError, WeightsError):  # braindecode / mne-icalabel missing: the rest of the zoo still works
    CARDS = ()
