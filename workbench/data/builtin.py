"""Built-in data sets: sklearn digits, generated mnist1d, 2-D toy sets, bundled skimage pictures,
the synthetic drowsiness EEG and decoded uploads. Each one registers itself by decorator."""

from __future__ import annotations

import functools
import random

import numpy as np

from workbench.core.cache import BoundedCache
from workbench.core.errors import DataError, UnknownIdError
from workbench.core.sample import Sample
from workbench.data.registry import Dataset, register_dataset

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


@functools.lru_cache(maxsize=1)
def _digits() -> dict:
    """sklearn's digits read from the csv its wheel ships, with the stored split (digits_split.py): what
    ``load_digits`` + ``train_test_split`` give, without importing sklearn (0.9 s of scipy.stats and pandas
    at every CLI start; tests/data/test_digits_split.py compares both ways)."""
    import importlib.util
    import os

    from workbench.data.digits_split import N_DIGITS, digits_test_mask

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits data set needs scikit-learn installed", "pip install scikit-learn")
    raw = np.loadtxt(os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz"),
                     delimiter=",")
    if raw.shape != (N_DIGITS, 65):
        raise DataError(f"sklearn's digits.csv.gz has shape {raw.shape}, not ({N_DIGITS}, 65)",
                        "reinstall scikit-learn")
    x = (raw[:, :64].reshape(-1, 8, 8) / 16.0).astype(np.float32)
    test = digits_test_mask()
    return {"x": x, "y": raw[:, 64].astype(np.int64), "train": np.flatnonzero(~test), "test": np.flatnonzero(test)}


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
    make = {"moons": lambda: make_moons(n_samples=n, noise=0.1, random_state=TOY2D_SEED),
            "circles": lambda: make_circles(n_samples=n, noise=0.1, factor=0.3, random_state=TOY2D_SEED)}
    x, y = make[name]()
    return {"x": x.astype(np.float32), "y": y.astype(np.int64), "train": np.arange(TOY2D_SPLIT[0]),
            "test": np.arange(TOY2D_SPLIT[0], n)}


class _Indexed(Dataset):
    """A labelled in-memory set whose sample ids are ``name:index``; ``_data()`` gives x, y, train, test."""

    splits = ("train", "test")
    default_split = "test"

    def _data(self, **kwargs) -> dict:
        raise NotImplementedError

    def items(self, split: str = "") -> list[str]:
        d = self._data()
        idx = d[split] if split in self.splits else range(len(d["y"]))
        return [f"{self.name}:{int(i)}" for i in idx]

    def get(self, sample_id: str) -> Sample:
        d = self._data()
        i = int(sample_id.rsplit(":", 1)[1])
        arr = d["x"][i] if self.kind in ("image", "vector") else d["x"][i][None, :]
        y = int(d["y"][i])
        return Sample(sample_id, self.kind, arr.astype(np.float32), y, str(y), self.name)

    def arrays(self, split: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        d = self._data(**kwargs)
        idx = np.arange(len(d["y"])) if split == "all" else d[split]
        return d["x"][idx], d["y"][idx]


@register_dataset
class Digits(_Indexed):
    name, kind, size, classes = "digits", "image", 1797, 10
    about = "sklearn's 1797 real 8x8 handwritten digits (fixed 75/25 split, seed 0)"

    def _data(self, **kwargs) -> dict:
        return _digits()


@register_dataset
class Mnist1d(_Indexed):
    name, kind, size, classes = "mnist1d", "signal", 5000, 10
    model_kinds = ("signal1d",)
    about = "mnist1d, generated locally (seed 42): 40-sample 1-D digit signals"

    def _data(self, **kwargs) -> dict:
        return _mnist1d(**kwargs)


@register_dataset
class Moons(_Indexed):
    name, kind, size, classes = "moons", "vector", sum(TOY2D_SPLIT), 2
    about = "sklearn make_moons, 2-D points, noise 0.1, seed 0 (1000 train / 500 test)"

    def _data(self, **kwargs) -> dict:
        return _toy2d(self.name)


@register_dataset
class Circles(Moons):
    name = "circles"
    about = "sklearn make_circles, 2-D points, noise 0.1, factor 0.3, seed 0 (1000 train / 500 test)"


@register_dataset
class Skimage(Dataset):
    name, kind, size = "skimage", "image", len(SKIMAGE_IMAGES)
    about = "real pictures bundled in scikit-image (chelsea, coffee, astronaut, ...)"

    def items(self, split: str = "") -> list[str]:
        return [f"skimage:{n}" for n in SKIMAGE_IMAGES]

    def select(self, selector: str) -> list[str]:
        if selector in SKIMAGE_IMAGES:
            return [f"skimage:{selector}"]
        if not selector or selector[0].isalpha():
            raise UnknownIdError(f"no bundled skimage picture {selector!r}",
                                 f"choose one of {', '.join(SKIMAGE_IMAGES)}")
        return super().select(selector)

    def get(self, sample_id: str) -> Sample:
        import skimage.data

        name = sample_id.split(":", 1)[1]
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        arr = img.astype(np.float32)
        arr = arr / 255.0 if img.dtype == np.uint8 else (arr - arr.min()) / max(np.ptp(arr), 1e-12)
        return Sample(sample_id, "image", arr, None, "", "scikit-image bundled picture")


@register_dataset
class Upload(Dataset):
    """Images decoded by ``workbench.io`` from uploads, kept in a bounded store (``upload:<sha12>``)."""

    name, kind, listed = "upload", "image", False
    about = "pictures uploaded in the app (the 32 most recent)"

    def items(self, split: str = "") -> list[str]:
        return [f"upload:{k}" for k in list(_UPLOADS._data)]

    def select(self, selector: str) -> list[str]:
        return [f"upload:{selector}"]

    def get(self, sample_id: str) -> Sample:
        s = _UPLOADS.get(sample_id.split(":", 1)[1])
        if s is None:
            raise UnknownIdError(f"upload {sample_id.split(':', 1)[1]!r} is no longer in memory",
                                 "upload the image again")
        return s


def store_upload(sample: Sample) -> str:
    """Keep a decoded upload in a bounded store; return its data id."""
    _UPLOADS.put(sample.id.split(":", 1)[1], sample)
    return sample.id


@register_dataset
class EegSynth(Dataset):
    """``eeg_synth.drowsy``: bare = 96 default windows; ``:subject:S``, ``:train`` / ``:test`` / ``:all``,
    ``:N``, ``:N,M``, ``:a-b`` and ``:test:a-b`` select others (see workbench.data.eeg_synth)."""

    name, kind, size, classes = "eeg_synth.drowsy", "signal", 674, 2
    model_kinds = ("eeg",)
    splits = ("train", "test")
    about = ("synthetic drowsiness EEG (seeded): 11 subjects, 30 channels, 3-s windows at 128 Hz, "
             "posterior alpha bursts with ground-truth masks")

    def items(self, split: str = "") -> list[str]:
        from workbench.data.eeg_synth import split_index

        return [f"{self.name}:{i}" for i in split_index(split or "all").tolist()]

    def select(self, selector: str) -> list[str]:
        from workbench.data import eeg_synth

        if selector.strip() == "" or selector.startswith("subject:"):
            return [f"{self.name}:{i}" for i in eeg_synth.selection(selector).tolist()]
        return super().select(selector)

    def load(self, ids: list[str]) -> list[Sample]:
        from workbench.data import eeg_synth

        return eeg_synth.samples_at([int(i.rsplit(":", 1)[1]) for i in ids])

    def get(self, sample_id: str) -> Sample:
        return self.load([sample_id])[0]

    def preview(self, limit: int = 24) -> list[str]:
        from workbench.data.eeg_synth import list_ids

        return list_ids(limit)

    def set_ids(self) -> list[str]:
        return [self.name, *super().set_ids()]

    def arrays(self, split: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        from workbench.data.eeg_synth import eeg_arrays

        d = eeg_arrays(split, **kwargs)
        return d["x"], d["y"]
