"""One raw input sample, shared by the data registry (workbench.data) and the decoders of untrusted
bytes (workbench.io): both build Samples, so the type lives below them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: the sample kinds a data set can hold, and the model kinds (ModelCard.kind) each one feeds
SAMPLE_KINDS = ("image", "signal", "vector")
MODEL_KINDS_FOR = {"image": ("image2d",), "signal": ("signal1d", "eeg"), "vector": ("vector",)}
SAMPLE_KIND_FOR = {"image2d": "image", "signal1d": "signal", "eeg": "signal", "vector": "vector"}


@dataclass(frozen=True)
class Sample:
    """One raw input. ``array``: image float32 (H, W) or (H, W, 3) in [0, 1];
    signal float32 (C, T) in its own units; vector float32 (D,) feature values.
    ``label`` is the class index when known."""

    id: str
    kind: str  # "image" | "signal" | "vector"
    array: np.ndarray
    label: int | None = None
    label_name: str = ""
    source: str = ""
    #: optional extras, e.g. EEG: subject, ground-truth mask (C, T) bool, sfreq, channel names
    meta: dict = field(default_factory=dict, compare=False)
