"""The user's own data sets, read through ``workbench.io`` with its limits:

  ``folder:DIR``               PNG/JPEG images; ImageFolder layout (``DIR/<class>/*.png``) gives labels
  ``npz:FILE.npz``             an array ``x`` (N, ...) with optional labels ``y`` (N,) and class names
                               ``classes``; ``.npy`` holds ``x`` only. ``:image`` / ``:signal`` / ``:vector``
                               after the path says what (N, A, B) arrays hold when the model cannot
  ``edf:FILE.edf``             an EDF/BDF (or FIF / Cui et al.'s .mat) recording in the EEG layout, cut into
                               3-s windows; ``:w=SECONDS`` cuts all channels at the file's rate instead
  ``image:FILE.png``           one PNG/JPEG picture (what a bare image path stands for)

Each takes the shared selector after the path (``:17``, ``:0-99``, ``:3,7``); sample ids are
``SCHEME:PATH[:OPTION]:INDEX``. Nothing is decoded until samples are loaded, and then only those asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import numpy as np

from workbench.core.errors import DataError
from workbench.core.sample import SAMPLE_KINDS, Sample
from workbench.data.registry import Dataset, register_dataset

_SELECTOR = re.compile(r"^(\d+(-\d+)?(,\d+)*)$")


def _split_path(rest: str, suffixes: tuple[str, ...]) -> tuple[str, list[str]]:
    """``/a/b.npz:image:0-9`` -> ("/a/b.npz", ["image", "0-9"]): the path ends at its last known suffix."""
    low = rest.lower()
    ends = [m.end() for s in suffixes for m in re.finditer(re.escape(s) + r"(?=:|$)", low)]
    if not ends:
        raise DataError(f"{rest!r} names no {'/'.join(suffixes)} file", "e.g. npz:/data/set.npz or edf:/data/rec.edf")
    end = max(ends)
    return rest[:end], [p for p in rest[end + 1:].split(":") if p] if end < len(rest) else []


class _Files(Dataset):
    """A user set: ``self.base`` (the id up to the selector), ``self.n`` samples."""

    listed = False
    base = ""
    n = 0

    def items(self, split: str = "") -> list[str]:
        return [f"{self.base}:{i}" for i in range(self.n)]

    @staticmethod
    def index(sample_id: str) -> int:
        return int(sample_id.rsplit(":", 1)[1])


@register_dataset
class Folder(_Files):
    name, kind = "folder", "image"
    about = "a folder of PNG/JPEG images; one sub-folder per class gives labels (ImageFolder layout)"

    def __init__(self, root: str = "") -> None:
        from workbench.io.images import scan_image_folder

        self.base = f"folder:{root}"
        self.paths, self.labels, self.class_names = scan_image_folder(root)
        self.n, self.classes = len(self.paths), len(self.class_names)

    @classmethod
    def open(cls, rest: str, expect: str = "") -> tuple[Dataset, str]:
        root, sel = rest, ""
        if not Path(rest).expanduser().is_dir() and ":" in rest:
            head, tail = rest.rsplit(":", 1)
            if _SELECTOR.match(tail):
                root, sel = head, tail
        return cls(root), sel

    def get(self, sample_id: str) -> Sample:
        from workbench.io.images import load_image_file

        i = self.index(sample_id)
        s, y = load_image_file(self.paths[i]), self.labels[i]
        name = self.class_names[y] if y is not None else ""
        return dataclasses.replace(s, id=sample_id, label=y, label_name=name, source=str(self.paths[i]))


def _as_kind(x: np.ndarray, kind: str, name: str) -> np.ndarray:
    """(N, ...) user array -> the Sample layout of ``kind`` (float32): image (N, H, W[, 3]) in [0, 1],
    signal (N, C, T), vector (N, D)."""
    if x.dtype.kind in "biu" and kind == "image":
        if x.dtype.kind != "b" and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{name}: integer pixels outside 0..255", "store uint8 pixels or floats in [0, 1]")
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{name} holds NaN or infinite values")
    if kind == "vector" and x.ndim == 2:
        return x
    if kind == "signal" and x.ndim in (2, 3):
        return x[:, None, :] if x.ndim == 2 else x
    if kind == "image" and x.ndim in (3, 4):
        if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
            x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if (x.ndim == 4 and x.shape[-1] != 3) or x.min() < 0 or x.max() > 1:
            raise DataError(f"{name}: images must be (N, H, W), (N, H, W, 3) or (N, 3, H, W) with pixels in [0, 1]",
                            "store raw pixels (uint8 or [0, 1] floats): the model card normalizes them")
        return x
    raise DataError(f"{name}: x is {x.shape}, which does not hold {kind} samples",
                    "vectors are (N, D), signals (N, C, T) or (N, T), images (N, H, W[, 3])")


def _infer_kind(x: np.ndarray, expect: str, name: str) -> str:
    if expect:
        return expect
    if x.ndim == 2:
        return "vector"
    if x.ndim == 4:
        return "image"
    raise DataError(f"{name}: x is {x.shape}: images (N, H, W) or signals (N, C, T)?",
                    "add :image or :signal after the file name, e.g. npz:/data/set.npz:signal")


@register_dataset
class Arrays(_Files):
    name, kind = "npz", "vector"
    model_kinds = ("image2d", "signal1d", "eeg", "vector")
    about = "an .npz (x, optional y and classes) or .npy array of samples"

    def __init__(self, path: str = "", kind: str = "", expect: str = "") -> None:
        d = _read_arrays(path)
        name = Path(path).name
        if "x" not in d:
            raise DataError(f"{name} has no array 'x'", "save the samples as x, e.g. numpy.savez(f, x=x, y=y)")
        x = d["x"]
        if x.dtype.kind not in "biuf":
            raise DataError(f"{name}: x holds {x.dtype} values, not numbers")
        if x.ndim < 2 or len(x) == 0:
            raise DataError(f"{name}: x is {x.shape}, expected (N, ...) with N >= 1 samples")
        self.sample_kind = _infer_kind(x, kind or expect, name)
        self.x = _as_kind(x, self.sample_kind, name)
        self.y = _labels(d.get("y"), len(x), name)
        names = d.get("classes")
        self.class_names = tuple(str(c) for c in names.ravel()) if names is not None else ()
        self.base, self.n = f"npz:{path}" + (f":{kind}" if kind else ""), len(x)
        self.classes = len(self.class_names) or (int(self.y.max()) + 1 if self.y is not None else 0)

    @classmethod
    def open(cls, rest: str, expect: str = "") -> tuple[Dataset, str]:
        path, opts = _split_path(rest, (".npz", ".npy"))
        kind = opts.pop(0) if opts and opts[0] in SAMPLE_KINDS else ""
        if len(opts) > 1:
            raise DataError(f"npz:{rest}: too many parts after the file name", "e.g. npz:/data/set.npz:image:0-9")
        return cls(path, kind, expect), opts[0] if opts else ""

    def get(self, sample_id: str) -> Sample:
        i = self.index(sample_id)
        y = None if self.y is None else int(self.y[i])
        name = self.class_names[y] if y is not None and y < len(self.class_names) else ("" if y is None else str(y))
        return Sample(sample_id, self.sample_kind, self.x[i], y, name, self.base)


def _read_arrays(path: str) -> dict:
    """x / y / classes of an .npz or .npy, cached by (path, size, mtime): a data-set run and its
    chunks open the same file many times."""

    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError:
        raise DataError(f"cannot read {p}", "check the path") from None
    return _cached_arrays(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _cached_arrays(path: str, size: int, mtime_ns: int) -> dict:
    from workbench.io.arrays import load_arrays

    d = load_arrays(path, ("x", "y", "classes"))
    for a in d.values():
        a.flags.writeable = False  # shared by every caller of the cache
    return d


def _labels(y: np.ndarray | None, n: int, name: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y).ravel()
    if len(y) != n:
        raise DataError(f"{name}: y has {len(y)} labels for {n} samples")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise DataError(f"{name}: y must hold whole class numbers")
    y = y.astype(np.int64)
    if (y < 0).any():
        raise DataError(f"{name}: y holds negative class numbers", "number classes from 0")
    return y


@register_dataset
class Recording(_Files):
    name, kind = "edf", "signal"
    model_kinds = ("eeg", "signal1d")
    about = "an EDF/BDF recording cut into windows (EEG layout: 30 channels, 3 s at 128 Hz; or :w=SECONDS)"

    def __init__(self, path: str = "", window_s: float = 0.0) -> None:
        from workbench.core.eeg_layout import CLASS_NAMES
        from workbench.io.eeg import load_eeg_file, load_recording_windows

        self.base = f"edf:{path}" + (f":w={window_s:g}" if window_s else "")
        if window_s:
            x, names, sfreq = load_recording_windows(path, window_s)
            meta = {"sfreq": sfreq, "channels": names, "units": "uV", "file": Path(path).name}
            self.samples = [Sample("", "signal", x[i], None, "", f"{Path(path).name} window {i}",
                                   dict(meta, start_s=i * x.shape[2] / sfreq)) for i in range(len(x))]
        else:
            self.samples = load_eeg_file(path)
        self.n, self.class_names = len(self.samples), CLASS_NAMES

    @classmethod
    def open(cls, rest: str, expect: str = "") -> tuple[Dataset, str]:
        path, opts = _split_path(rest, (".edf", ".bdf", ".fif", ".mat"))
        window = 0.0
        if opts and opts[0].startswith("w="):
            try:
                window = float(opts.pop(0)[2:].rstrip("s"))
            except ValueError:
                window = -1.0
            if not 0 < window <= 600:
                raise DataError(f"edf:{rest}: the window must be w=SECONDS in (0, 600]", "e.g. edf:/data/rec.edf:w=2")
        if len(opts) > 1:
            raise DataError(f"edf:{rest}: too many parts after the file name", "e.g. edf:/data/rec.edf:w=2:0-9")
        return cls(path, window), opts[0] if opts else ""

    def get(self, sample_id: str) -> Sample:
        return dataclasses.replace(self.samples[self.index(sample_id)], id=sample_id)


@register_dataset
class ImageFile(Dataset):
    """One PNG/JPEG file (a bare image path)."""

    name, kind, listed = "image", "image", False
    about = "one PNG/JPEG file"

    def __init__(self, path: str = "") -> None:
        self.path = path

    @classmethod
    def open(cls, rest: str, expect: str = "") -> tuple[Dataset, str]:
        return cls(rest), ""

    def items(self, split: str = "") -> list[str]:
        return [self.path]

    def select(self, selector: str) -> list[str]:
        return [self.path]

    def get(self, sample_id: str) -> Sample:
        from workbench.io.images import load_image_file

        return load_image_file(sample_id)
