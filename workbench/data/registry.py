"""Built-in data sets (sklearn digits, generated mnist1d, bundled skimage pictures) and uploads."""

from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.core.cache import BoundedCache
from workbench.core.errors import DataError, UnknownIdError

# skimage pictures that ship inside the wheel (the others download: never use them)
SKIMAGE_IMAGES = ("astronaut", "brick", "camera", "cat", "cell", "checkerboard", "chelsea", "clock",
                  "coffee", "coins", "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
                  "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
                  "rocket", "shepp_logan_phantom", "text")
MNIST1D_SEED = 42
#: generated 2-D toy sets (Yeom et al.'s pruning toy): sklearn make_moons / make_circles, fixed seed
TOY2D_SETS = ("moons", "circles")
TOY2D_SEED = 0
TOY2D_SPLIT = (1000, 500)  # train, test
_UPLOADS = BoundedCache(32)


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


@functools.lru_cache(maxsize=1)
def _digits() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    idx = np.arange(len(x))
    tr, te = train_test_split(idx, test_size=0.25, random_state=0, stratify=d.target)
    return {"x": x, "y": d.target.astype(np.int64), "train": np.sort(tr), "test": np.sort(te)}


@functools.lru_cache(maxsize=2)
def _mnist1d(num_samples: int = 5000, seed: int = MNIST1D_SEED) -> dict:
    """mnist1d generated locally (never ``get_dataset``: it downloads and writes a pickle)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    state_np, state_py = np.random.get_state(), random.getstate()  # make_dataset reseeds globals
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state_np)
        random.setstate(state_py)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    n_tr = len(d["y"])
    return {"x": x, "y": y, "train": np.arange(n_tr), "test": np.arange(n_tr, len(y))}


@functools.lru_cache(maxsize=2)
def _toy2d(name: str) -> dict:
    """moons (noise 0.1) or circles (noise 0.1, factor 0.3), 1500 points from seed 0: first 1000 train, last 500
    test (sklearn shuffles the points, so both splits are balanced in expectation)."""
    from sklearn.datasets import make_circles, make_moons

    n = sum(TOY2D_SPLIT)
    if name == "moons":
        x, y = make_moons(n_samples=n, noise=0.1, random_state=TOY2D_SEED)
    else:
        x, y = make_circles(n_samples=n, noise=0.1, factor=0.3, random_state=TOY2D_SEED)
    return {"x": x.astype(np.float32), "y": y.astype(np.int64), "train": np.arange(TOY2D_SPLIT[0]),
            "test": np.arange(TOY2D_SPLIT[0], n)}


def dataset_arrays(name: str, split: str = "train", **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Raw arrays of a built-in set: digits (N, 8, 8) in [0, 1], mnist1d (N, 40), moons / circles (N, 2);
    labels int64."""
    if name == "digits":
        d = _digits()
    elif name == "mnist1d":
        d = _mnist1d(**kwargs)
    elif name == "eeg_synth.drowsy":  # x (N, 30, 384) uV; subjects and masks: eeg_synth.eeg_arrays
        from workbench.data.eeg_synth import eeg_arrays

        d = eeg_arrays(split, **kwargs)
        return d["x"], d["y"]
    elif name in TOY2D_SETS:
        d = _toy2d(name)
    else:
        raise UnknownIdError(f"no array data set {name!r}", "use digits, mnist1d, moons or circles")
    if split not in ("train", "test", "all"):
        raise DataError(f"split {split!r} is not train, test or all")
    idx = np.arange(len(d["y"])) if split == "all" else d[split]
    return d["x"][idx], d["y"][idx]


def list_datasets() -> list[dict]:
    return [
        {"name": "digits", "kind": "image", "size": 1797, "classes": 10,
         "about": "sklearn's 1797 real 8x8 handwritten digits (fixed 75/25 split, seed 0)"},
        {"name": "mnist1d", "kind": "signal", "size": 5000, "classes": 10,
         "about": "mnist1d, generated locally (seed 42): 40-sample 1-D digit signals"},
        {"name": "skimage", "kind": "image", "size": len(SKIMAGE_IMAGES), "classes": 0,
         "about": "real pictures bundled in scikit-image (chelsea, coffee, astronaut, ...)"},
        {"name": "eeg_synth.drowsy", "kind": "signal", "size": 674, "classes": 2,
         "about": "synthetic drowsiness EEG (seeded): 11 subjects, 30 channels, 3-s windows at 128 Hz, "
                  "posterior alpha bursts with ground-truth masks"},
        {"name": "moons", "kind": "vector", "size": sum(TOY2D_SPLIT), "classes": 2,
         "about": "sklearn make_moons, 2-D points, noise 0.1, seed 0 (1000 train / 500 test)"},
        {"name": "circles", "kind": "vector", "size": sum(TOY2D_SPLIT), "classes": 2,
         "about": "sklearn make_circles, 2-D points, noise 0.1, factor 0.3, seed 0 (1000 train / 500 test)"},
    ]


def list_items(name: str, limit: int = 24) -> list[str]:
    """A few ids of a data set, for pickers."""
    if name == "skimage":
        return [f"skimage:{n}" for n in SKIMAGE_IMAGES]
    if name == "digits":
        return [f"digits:{i}" for i in _digits()["test"][:limit]]
    if name == "mnist1d":
        return [f"mnist1d:{i}" for i in _mnist1d()["test"][:limit]]
    if name in TOY2D_SETS:
        return [f"{name}:{i}" for i in _toy2d(name)["test"][:limit]]
    if name == "upload":
        return [f"upload:{k}" for k in list(_UPLOADS._data)]
    if name == "eeg_synth.drowsy":
        from workbench.data.eeg_synth import list_ids

        return list_ids(limit)
    raise UnknownIdError(f"no data set {name!r}", "use digits, mnist1d, moons, circles or skimage")


def _skimage(name: str) -> Sample:
    if name not in SKIMAGE_IMAGES:
        raise UnknownIdError(f"no bundled skimage picture {name!r}",
                             f"choose one of {', '.join(SKIMAGE_IMAGES)}")
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    arr = img.astype(np.float32)
    arr = arr / 255.0 if img.dtype == np.uint8 else (arr - arr.min()) / max(np.ptp(arr), 1e-12)
    return Sample(f"skimage:{name}", "image", arr, None, "", "scikit-image bundled picture")


def _indexed(name: str, rest: str) -> list[Sample]:
    d = _toy2d(name) if name in TOY2D_SETS else _digits() if name == "digits" else _mnist1d()
    parts = rest.split(":")
    try:
        if len(parts) == 2 and parts[0] in ("train", "test"):
            idx = list(d[parts[0]][: int(parts[1])])
        else:
            idx = [int(p) for p in rest.split(",")]
    except ValueError:
        raise DataError(f"data id {name}:{rest!r} is not an index, a list or split:N",
                        f"e.g. {name}:0 or {name}:test:16") from None
    n = len(d["y"])
    if not idx or any(i < 0 or i >= n for i in idx):
        raise DataError(f"{name} index out of range in {rest!r} (0..{n - 1})")
    kind = "vector" if name in TOY2D_SETS else "image" if name == "digits" else "signal"
    out = []
    for i in idx:
        arr = d["x"][i] if kind in ("image", "vector") else d["x"][i][None, :]
        out.append(Sample(f"{name}:{i}", kind, arr.astype(np.float32), int(d["y"][i]),
                          str(int(d["y"][i])), name))
    return out


def store_upload(sample: Sample) -> str:
    """Keep a decoded upload in a bounded store; return its data id."""
    _UPLOADS.put(sample.id.split(":", 1)[1], sample)
    return sample.id


def get_samples(data_id: str) -> list[Sample]:
    """Resolve a data id (or an image path) to samples. Raises a typed error otherwise."""
    data_id = (data_id or "").strip()
    name, _, rest = data_id.partition(":")
    if name in ("digits", "mnist1d", *TOY2D_SETS) and rest:
        return _indexed(name, rest)
    if name == "skimage" and rest:
        return [_skimage(rest)]
    if name == "eeg_synth.drowsy":
        from workbench.data.eeg_synth import samples

        return samples(rest)
    if name == "upload" and rest:
        s = _UPLOADS.get(rest)
        if s is None:
            raise UnknownIdError(f"upload {rest!r} is no longer in memory", "upload the image again")
        return [s]
    if Path(data_id).suffix.lower() in (".mat", ".edf", ".bdf", ".fif"):  # EEG files: workbench.io.eeg
        from workbench.io.eeg import load_eeg_file

        return load_eeg_file(data_id)
    if data_id and (os.sep in data_id or Path(data_id).suffix) and Path(data_id).exists():
        from workbench.io.images import load_image_file

        return [load_image_file(data_id)]
    raise UnknownIdError(f"no data {data_id!r}",
                         "use digits:N, digits:test:N, mnist1d:N, moons:N, circles:test:N, skimage:NAME "
                         "or a PNG/JPEG path")
