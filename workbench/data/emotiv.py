"""Real EEG that ships inside a package: spkit's 14-channel Emotiv recording (16 s at 128 Hz, microvolts,
MIT licence), and the independent components of it that ICLabel classifies.

``emotiv`` : the recording cut into 3-s windows (384 samples) every second: 14 windows, ids
``emotiv:0`` .. ``emotiv:13``; meta: sfreq, channel names (10-20 positions: AF3 F7 F3 FC5 T7 P7 O1 O2 P8 T8
FC6 F4 F8 AF4), units. No labels and no ground truth: the recording is what it is.
``emotiv.ica`` : ICLabel's inputs for the recording's components (models/eeg_iclabel.py): the recording
band-passed above 1 Hz, average-referenced, decomposed by mne's ICA (FastICA, 13 components, seed 0), then
mne-icalabel's own feature extraction (topomap, PSD, autocorrelation), each component packed into one
(34, 100) feature sheet (the negated topomap beside the topomap, see :func:`pack`); ids ``emotiv.ica:0`` ..
``:12``. The decomposition takes ~10-20 s on a CPU and is kept for the process.

The recording is published only as a pickle; it is decoded with the allow-list unpickler
(workbench/io/numpy_pickle.py), which admits numpy arrays and nothing else. spkit itself is never imported.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np

from workbench.core.errors import DataError
from workbench.core.sample import Sample
from workbench.data.registry import Dataset, register_dataset

SFREQ, WINDOW, STEP = 128.0, 384, 128
N_COMPONENTS, ICA_SEED = 13, 0
CITE_SPKIT = "Bajaj, N. (2021). spkit: Signal Processing toolkit, Python (EEG16SecData, Emotiv 14 channels)."


def recording_file() -> Path:
    spec = importlib.util.find_spec("spkit")  # locates the package without importing (running) it
    if spec is None or not spec.origin:
        raise DataError("the Emotiv recording needs the spkit package", "pip install --no-deps spkit==0.0.9.7")
    return Path(spec.origin).parent / "data" / "files" / "EEG16SecData.pkl"


@functools.lru_cache(maxsize=1)
def recording() -> tuple[np.ndarray, tuple[str, ...]]:
    """(14, 2048) float32 microvolts and the channel names."""
    from workbench.io.numpy_pickle import load_arrays

    x, names = load_arrays(recording_file())
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise DataError(f"the Emotiv recording has shape {x.shape} for {len(names)} channels", "reinstall spkit")
    return x.T.astype(np.float32), tuple(str(n) for n in names)


def n_windows() -> int:
    return (recording()[0].shape[1] - WINDOW) // STEP + 1


@register_dataset
class Emotiv(Dataset):
    name, kind, size, classes = "emotiv", "signal", 14, 0
    model_kinds = ("eeg",)
    about = "real 14-channel Emotiv EEG (spkit, 16 s at 128 Hz), 3-s windows every second, no labels"

    def items(self, split: str = "") -> list[str]:
        return [f"{self.name}:{i}" for i in range(n_windows())]

    def get(self, sample_id: str) -> Sample:
        i = int(sample_id.rsplit(":", 1)[1])
        if not 0 <= i < n_windows():
            raise DataError(f"no window {i} in emotiv", f"windows are 0..{n_windows() - 1}")
        x, names = recording()
        return Sample(sample_id, "signal", x[:, i * STEP:i * STEP + WINDOW].copy(), source=CITE_SPKIT,
                      meta={"sfreq": SFREQ, "channels": names, "units": "uV", "start_s": i * STEP / SFREQ})


@functools.lru_cache(maxsize=1)
def ica_features() -> dict:
    """ICLabel's packed inputs for the recording's components (see the module docstring)."""
    import warnings

    import mne
    from mne_icalabel import label_components
    from mne_icalabel.iclabel.features import get_iclabel_features

    x, names = recording()
    with warnings.catch_warnings(), mne.utils.use_log_level("ERROR"):
        warnings.simplefilter("ignore")
        raw = mne.io.RawArray(x.astype(np.float64) * 1e-6, mne.create_info(list(names), SFREQ, "eeg"))
        raw.set_montage("standard_1020")
        raw.filter(1.0, None).set_eeg_reference("average")
        ica = mne.preprocessing.ICA(n_components=N_COMPONENTS, method="fastica", random_state=ICA_SEED,
                                    max_iter=1000)
        ica.fit(raw)
        sheets = pack(*get_iclabel_features(raw, ica))
        labels = label_components(raw, ica, method="iclabel")
    return {"sheets": sheets, "mne_icalabel_labels": list(labels["labels"]),
            "mne_icalabel_proba": np.asarray(labels["y_pred_proba"], np.float64)}


def pack(topo: np.ndarray, psd: np.ndarray, autocorr: np.ndarray) -> np.ndarray:
    """mne-icalabel features (topo (32, 32, 1, n), psd (1, 100, 1, n), autocorr (1, 100, 1, n)) -> (n, 1, 34, 100)
    float32 feature sheets: rows 0-31 / columns 0-31 the topomap, columns 32-63 the negated topomap (ICLabel's
    2nd and 4th views; stored, not computed in the network, so that LRP has no sign flip to pass: see
    models/eeg_iclabel.py), row 32 the PSD, row 33 the autocorrelation."""
    n = topo.shape[-1]
    sheet = np.zeros((n, 1, 34, 100), np.float32)
    sheet[:, 0, :32, :32] = np.transpose(topo[:, :, 0, :], (2, 0, 1))
    sheet[:, 0, :32, 32:64] = -sheet[:, 0, :32, :32]
    sheet[:, 0, 32, :] = psd[0, :, 0, :].T
    sheet[:, 0, 33, :] = autocorr[0, :, 0, :].T
    return sheet


@register_dataset
class EmotivICA(Dataset):
    name, kind, size, classes = "emotiv.ica", "image", N_COMPONENTS, 0
    model_kinds = ("image2d",)
    # ICLabel's own feature layout (models/eeg_iclabel.py SHEET): offered only to a model taking that sheet
    # (registry.datasets_for), not to every image2d classifier: a sheet of topomap, PSD and autocorrelation rows
    # is no picture
    input_shape: ClassVar[tuple[int, ...]] = (1, 34, 100)
    about = ("ICLabel feature sheets (topomap, PSD, autocorrelation) of the 13 ICA components of the real "
             "Emotiv recording; for iclabel.mne")

    def items(self, split: str = "") -> list[str]:
        return [f"{self.name}:{i}" for i in range(N_COMPONENTS)]

    def get(self, sample_id: str) -> Sample:
        i = int(sample_id.rsplit(":", 1)[1])
        if not 0 <= i < N_COMPONENTS:
            raise DataError(f"no component {i} in emotiv.ica", f"components are 0..{N_COMPONENTS - 1}")
        f = ica_features()
        return Sample(sample_id, "image", f["sheets"][i, 0].copy(), source=f"ICA component {i} of {CITE_SPKIT}",
                      meta={"layout": "iclabel_sheet", "mne_icalabel_label": f["mne_icalabel_labels"][i]})
