"""EEG recordings in: Cui et al.'s preprocessed ``.mat`` windows, and EDF / BDF / FIF through MNE.

Every file becomes a list of 3-s windows in the drowsiness layout the EEG models take: the 30
channels of :data:`workbench.core.eeg_layout.CHANNELS` in that order, 128 Hz, 384 samples, float32
microvolts. Sizes are checked before anything is decoded (:mod:`workbench.io.limits`), EDF/BDF
headers are pre-parsed by :mod:`workbench.io.edf_header`, and every library failure becomes an
:class:`EegFileError` with a one-line cause and a hint.

* ``.mat`` (MATLAB v5/v7, as published on figshare): ``EEGsample`` (N, 30, 384), ``substate`` (N, 1)
  0 alert / 1 drowsy, ``subindex`` (N, 1) subject numbers from 1. Values are taken as microvolts.
  When the file holds the published 2022 windows of 11 subjects, the per-subject counts are compared
  with the documented ones (a mismatch is a warning: those counts are not yet verified).
* EDF / BDF / FIF: channels are picked by name (exact, then case-insensitive, "EEG " prefixes and
  "-REF" style suffixes ignored, and the 10-10 names T7/T8/P7/P8 accepted for T3/T4/T5/T6, each
  non-exact match reported in a warning); the recording must be sampled at 128 Hz; it is cut into
  consecutive non-overlapping windows. Labels are unknown (None); the subject is the file name.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from pathlib import Path

import numpy as np

from workbench.core.eeg_layout import CHANNELS, CLASS_NAMES, SFREQ, WINDOW
from workbench.core.errors import InputTooLargeError
from workbench.core.sample import Sample
from workbench.io import limits
from workbench.io.edf_header import EegFileError, check_edf_header

MAT_FIELDS = ("EEGsample", "substate", "subindex")
#: per-subject window counts of the published balanced set (shared/methods digest, unverified [U])
DOCUMENTED_COUNTS = (188, 132, 150, 148, 224, 166, 102, 264, 314, 108, 226)
ALIASES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}
_FIF_MAGIC = b"\x00\x00\x00\x64"


def _stat(path: Path) -> os.stat_result:
    from workbench.io.safe import check_file

    # opened and fstat-ed (never a FIFO, device or directory) before MNE / scipy get the path
    st = check_file(path, limits.MAX_EEG_BYTES, what="recording", hint="",
                    error=lambda message, hint: EegFileError("format", message, hint))
    if st.st_size == 0:
        raise EegFileError("truncated", f"{path.name} is empty")
    return st


def load_eeg_file(path: str | Path) -> list[Sample]:
    """Read a .mat / .edf / .bdf / .fif file into windows (Samples of kind "signal", (30, 384) float32 uV).

    Raises EegFileError (DataError) or InputTooLargeError with one line. Parsed files are cached by
    (path, size, mtime), two at a time.
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in limits.EEG_FORMATS:
        raise EegFileError("format", f"{p.name}: {suffix or 'no extension'} is not an EEG format",
                           f"use one of {', '.join(limits.EEG_FORMATS)}")
    st = _stat(p)
    return list(_load_cached(str(p.resolve()), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, size: int, mtime_ns: int) -> tuple[Sample, ...]:
    p = Path(path)
    if p.suffix.lower() == ".mat":
        return tuple(load_mat(p, size))
    return tuple(load_raw(p, size))


# ---- .mat (Cui et al.'s published windows) ---------------------------------------------------

def _mat_header(p: Path) -> None:
    with p.open("rb") as f:
        head = f.read(128)
    if head.startswith(b"MATLAB 7.3"):
        raise EegFileError("format", f"{p.name} is a MATLAB v7.3 (HDF5) file, which scipy cannot read",
                           "re-save it in MATLAB with save(..., '-v7') or in Python with scipy.io.savemat")
    if not head.startswith(b"MATLAB 5.0") or len(head) < 128:
        raise EegFileError("format", f"{p.name} is not a MATLAB v5/v7 .mat file", "give the published dataset.mat")


def _mat_shapes(p: Path) -> dict:
    import scipy.io

    try:
        found = {name: (tuple(shape), cls) for name, shape, cls in scipy.io.whosmat(str(p))}
    except Exception as e:  # noqa: BLE001 - scipy raises many types on corrupt files
        raise EegFileError("truncated", f"{p.name}: the .mat file cannot be parsed ({type(e).__name__})",
                           "the file may be truncated or corrupt") from None
    missing = [f for f in MAT_FIELDS if f not in found]
    if missing:
        raise EegFileError("wrong_fields", f"{p.name} lacks the field(s) {', '.join(missing)} "
                                           f"(found: {', '.join(sorted(found)) or 'none'})",
                           "the published format has EEGsample (N x 30 x 384), substate and subindex")
    shape = found["EEGsample"][0]
    if len(shape) != 3:
        raise EegFileError("wrong_fields", f"{p.name}: EEGsample is {shape}, expected (windows, 30, 384)")
    n, c, t = shape
    if c == 0 or n == 0:
        raise EegFileError("zero_channels", f"{p.name}: EEGsample {shape} holds no channel or no window")
    if c != len(CHANNELS):
        raise EegFileError("wrong_fields", f"{p.name}: EEGsample has {c} channels, the models take "
                                           f"{len(CHANNELS)} ({CHANNELS[0]} ... {CHANNELS[-1]})")
    if t != WINDOW:
        raise EegFileError("sampling_rate", f"{p.name}: windows have {t} samples, expected {WINDOW} "
                                            f"(3 s at {SFREQ:g} Hz)", f"resample the data to {SFREQ:g} Hz")
    if n > limits.MAX_EEG_WINDOWS or n * c * t * 4 > limits.MAX_EEG_DECODED_BYTES:
        raise InputTooLargeError(f"{p.name}: {n} windows, over the limit of {limits.MAX_EEG_WINDOWS}")
    for f in ("substate", "subindex"):
        if int(np.prod(found[f][0])) != n:
            raise EegFileError("wrong_fields", f"{p.name}: {f} has {int(np.prod(found[f][0]))} entries "
                                               f"for {n} windows")
    return found


def _int_labels(a: np.ndarray, field: str, name: str, allowed=None) -> np.ndarray:
    v = np.asarray(a).ravel()
    if v.dtype.kind not in "iuf" or not np.isfinite(v.astype(np.float64)).all() or (v != np.round(v)).any():
        raise EegFileError("labels", f"{name}: {field} must hold whole numbers")
    v = v.astype(np.int64)
    if allowed is not None and not np.isin(v, allowed).all():
        raise EegFileError("labels", f"{name}: {field} holds {sorted(set(v.tolist()) - set(allowed))[:5]}, "
                                     f"allowed {list(allowed)} (0 alert, 1 drowsy)")
    if allowed is None and (v < 1).any():
        raise EegFileError("labels", f"{name}: {field} must number subjects from 1")
    return v


def _check_documented_counts(subjects: np.ndarray, name: str) -> bool:
    counts = np.bincount(subjects)[1:]
    if len(subjects) != sum(DOCUMENTED_COUNTS) or len(counts) != len(DOCUMENTED_COUNTS):
        return True
    if tuple(counts.tolist()) != DOCUMENTED_COUNTS:
        warnings.warn(f"{name}: per-subject counts {counts.tolist()} differ from the documented "
                      f"{list(DOCUMENTED_COUNTS)}", stacklevel=4)
        return False
    return True


def load_mat(p: Path, size: int) -> list[Sample]:
    """The published ``.mat`` windows -> Samples with label (0/1) and meta subject."""
    import scipy.io

    _mat_header(p)
    _mat_shapes(p)
    try:
        d = scipy.io.loadmat(str(p), variable_names=list(MAT_FIELDS), squeeze_me=False,
                             verify_compressed_data_integrity=True)
    except Exception as e:  # noqa: BLE001
        raise EegFileError("truncated", f"{p.name}: the .mat data cannot be read ({type(e).__name__})",
                           "the file may be truncated or corrupt") from None
    x = np.asarray(d["EEGsample"])
    if x.dtype.kind not in "iuf":
        raise EegFileError("wrong_fields", f"{p.name}: EEGsample holds {x.dtype}, not numbers")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise EegFileError("not_finite", f"{p.name}: EEGsample holds NaN or infinite values")
    y = _int_labels(d["substate"], "substate", p.name, allowed=(0, 1))
    subj = _int_labels(d["subindex"], "subindex", p.name)
    matches = _check_documented_counts(subj, p.name)
    meta = {"sfreq": SFREQ, "channels": CHANNELS, "units": "uV", "file": p.name, "documented_counts": matches}
    return [Sample(f"{p.name}#{i}", "signal", x[i], int(y[i]), CLASS_NAMES[int(y[i])],
                   f"{p.name} window {i} (subject {int(subj[i])})", {**meta, "subject": int(subj[i])})
            for i in range(len(x))]


# ---- EDF / BDF / FIF through MNE ---------------------------------------------------------------

def _norm(label: str) -> str:
    s = label.strip().lower()
    s = re.sub(r"^eeg[\s_-]*", "", s)
    s = re.sub(r"[-_\s](ref|le|re|a1|a2|m1|m2|avg|car)$", "", s)
    return s.replace(" ", "")


def pick_channels(available: list[str], name: str) -> list[str]:
    """For each model channel, the recording's channel name: exact, else normalized (case, "EEG "
    prefix, "-REF" suffix, T7/T8/P7/P8 for T3/T4/T5/T6) with a warning. EegFileError if any is missing."""
    exact = set(available)
    by_norm: dict[str, str] = {}
    for a in available:
        by_norm.setdefault(_norm(a), a)
    picked, loose, missing = [], [], []
    for ch in CHANNELS:
        if ch in exact:
            picked.append(ch)
            continue
        key = _norm(ch)
        hit = by_norm.get(key) or by_norm.get(ALIASES.get(key, ""))
        if hit is None:
            missing.append(ch)
        else:
            picked.append(hit)
            loose.append(f"{hit}->{ch}")
    if missing:
        more = " ..." if len(missing) > 6 else ""
        raise EegFileError("missing_channels", f"{name}: {len(missing)} of the {len(CHANNELS)} channels are "
                                               f"missing ({', '.join(missing[:6])}{more})",
                           f"the models need {', '.join(CHANNELS)}; rename the channels in the recording")
    if loose:
        warnings.warn(f"{name}: matched channel names loosely: {', '.join(loose)}", UserWarning, stacklevel=3)
    return picked


def _read_mne(p: Path, size: int):
    import mne

    suffix = p.suffix.lower()
    if suffix in (".edf", ".bdf"):
        with p.open("rb") as f:  # the largest header the limits allow; check_edf_header reads its size
            head = f.read(256 * (1 + limits.MAX_EEG_CHANNELS))
        info = check_edf_header(head, size, p.name)
        if info["bdf"] != (suffix == ".bdf"):
            raise EegFileError("format", f"{p.name}: the header is {'BDF' if info['bdf'] else 'EDF'}, "
                                         f"the extension says {suffix}", "fix the file extension")
        reader = mne.io.read_raw_bdf if info["bdf"] else mne.io.read_raw_edf
    else:
        with p.open("rb") as f:
            if f.read(4) != _FIF_MAGIC:
                raise EegFileError("format", f"{p.name} is not a FIF file (no file-id tag)")
        reader = mne.io.read_raw_fif
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return reader(str(p), preload=False, verbose="error")
    except Exception as e:  # noqa: BLE001 - MNE raises ValueError, OSError, RuntimeError, AssertionError...
        raise EegFileError("truncated", f"{p.name} could not be read by MNE ({type(e).__name__}: "
                                        f"{str(e).splitlines()[0][:120] if str(e) else ''})",
                           "the file may be truncated or corrupt") from None


def load_raw(p: Path, size: int) -> list[Sample]:
    """An EDF/BDF/FIF recording -> consecutive 3-s windows of the 30 model channels in uV."""
    raw = _read_mne(p, size)
    if len(raw.ch_names) == 0:
        raise EegFileError("zero_channels", f"{p.name} holds no channel")
    sfreq = float(raw.info["sfreq"])
    if abs(sfreq - SFREQ) > 1e-6:
        raise EegFileError("sampling_rate", f"{p.name} is sampled at {sfreq:g} Hz, the models take {SFREQ:g} Hz",
                           f"resample it first, e.g. mne: raw.resample({SFREQ:g})")
    picks = pick_channels(list(raw.ch_names), p.name)
    n_win = raw.n_times // WINDOW
    if n_win < 1:
        raise EegFileError("too_short", f"{p.name} lasts {raw.n_times / sfreq:.2f} s, shorter than one "
                                        f"{WINDOW / SFREQ:g}-s window")
    if n_win > limits.MAX_EEG_WINDOWS:
        warnings.warn(f"{p.name}: only the first {limits.MAX_EEG_WINDOWS} windows are used", stacklevel=3)
        n_win = limits.MAX_EEG_WINDOWS
    try:
        data = raw.get_data(picks=picks, start=0, stop=n_win * WINDOW) * 1e6  # MNE holds volts
    except Exception as e:  # noqa: BLE001
        raise EegFileError("truncated", f"{p.name}: reading the samples failed ({type(e).__name__})",
                           "the file may be truncated or corrupt") from None
    x = np.asarray(data, dtype=np.float32).reshape(len(CHANNELS), n_win, WINDOW).transpose(1, 0, 2)
    if not np.isfinite(x).all():
        raise EegFileError("not_finite", f"{p.name} holds NaN or infinite samples")
    x = np.ascontiguousarray(x)
    meta = {"sfreq": SFREQ, "channels": CHANNELS, "units": "uV", "file": p.name, "subject": 1,
            "recording_channels": picks}
    return [Sample(f"{p.name}#{i}", "signal", x[i], None, "", f"{p.name} {i * WINDOW / SFREQ:g}-"
                   f"{(i + 1) * WINDOW / SFREQ:g} s", dict(meta, start_s=i * WINDOW / SFREQ)) for i in range(n_win)]



def load_recording_windows(path: str | Path, window_s: float) -> tuple[np.ndarray, tuple[str, ...], float]:
    """Any EDF / BDF / FIF recording -> consecutive non-overlapping windows of ``window_s`` seconds over
    all its channels, at the file's own rate (for signal models that do not take the EEG layout).

    Returns x (N, C, T) float32 in microvolts, the channel names and the rate in Hz. Sizes are checked
    before the samples are decoded; EegFileError / InputTooLargeError with one line otherwise."""
    p = Path(path).expanduser()
    if p.suffix.lower() not in limits.EEG_FORMATS or p.suffix.lower() == ".mat":
        raise EegFileError("format", f"{p.name} is not an EDF, BDF or FIF recording", "give a .edf, .bdf or .fif file")
    st = _stat(p)
    x, names, sfreq = _windows_cached(str(p.resolve()), st.st_size, st.st_mtime_ns, float(window_s))
    return x, names, sfreq


@functools.lru_cache(maxsize=2)
def _windows_cached(path: str, size: int, mtime_ns: int, window_s: float) -> tuple[np.ndarray, tuple, float]:
    p = Path(path)
    raw = _read_mne(p, size)
    n_ch, sfreq = len(raw.ch_names), float(raw.info["sfreq"])
    if n_ch == 0:
        raise EegFileError("zero_channels", f"{p.name} holds no channel")
    t = int(round(window_s * sfreq))
    if t < 2:
        raise EegFileError("too_short", f"{p.name}: a {window_s:g}-s window at {sfreq:g} Hz holds under 2 samples",
                           "use a longer window")
    n_win = raw.n_times // t
    if n_win < 1:
        raise EegFileError("too_short", f"{p.name} lasts {raw.n_times / sfreq:.2f} s, shorter than one "
                                        f"{window_s:g}-s window")
    if n_win > limits.MAX_EEG_WINDOWS or n_ch * n_win * t * 4 > limits.MAX_EEG_DECODED_BYTES:
        raise InputTooLargeError(f"{p.name}: {n_win} windows of {n_ch} x {t} samples, over the limit of "
                                 f"{limits.MAX_EEG_WINDOWS} windows / {limits.MAX_EEG_DECODED_BYTES >> 20} MB",
                                 "cut the recording or use longer windows")
    try:
        data = raw.get_data(start=0, stop=n_win * t) * 1e6  # MNE holds volts
    except Exception as e:  # noqa: BLE001 - MNE raises many types on corrupt files
        raise EegFileError("truncated", f"{p.name}: reading the samples failed ({type(e).__name__})",
                           "the file may be truncated or corrupt") from None
    x = np.ascontiguousarray(np.asarray(data, dtype=np.float32).reshape(n_ch, n_win, t).transpose(1, 0, 2))
    if not np.isfinite(x).all():
        raise EegFileError("not_finite", f"{p.name} holds NaN or infinite samples")
    x.flags.writeable = False  # cached and shared between callers
    return x, tuple(raw.ch_names), sfreq


UPLOAD_KEEP = 4


def upload_name(name: str) -> str:
    """The file name an upload is kept under: the browser's name reduced to its last path part (``/`` or
    ``\\``), letters, digits and ``_.-`` (runs of anything else become one ``_``), no leading dot, at most 80
    characters, and its extension in lower case (the loader routes on it)."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", re.split(r"[\\/]", name)[-1])
    suffix = Path(base).suffix.lower()[:10]
    stem = base[: len(base) - len(suffix)].strip("._-")[: 80 - len(suffix)]
    return f"{stem or 'upload'}{suffix}"


def save_upload(data: bytes, name: str) -> str:
    """Keep an uploaded recording as a file (MNE reads paths, not bytes) and return its path, which is a
    data id: ``<private temp folder>/<sha16>/<clean name>`` (:func:`upload_name`), so the data id, titles and
    errors name the user's file while its content hash keeps different files apart. Size and extension are
    checked first; the folder holds at most ``UPLOAD_KEEP`` uploads (the least recently stored are removed).
    The content is only parsed later, by :func:`load_eeg_file`."""
    import hashlib
    import shutil
    import tempfile

    suffix = Path(name).suffix.lower()
    if suffix not in limits.EEG_FORMATS or Path(upload_name(name)).suffix != suffix:
        raise EegFileError("format", f"{name}: {suffix or 'no extension'} is not an EEG format",
                           f"upload one of {', '.join(limits.EEG_FORMATS)}")
    if len(data) > limits.MAX_EEG_BYTES:
        raise InputTooLargeError(f"{name} is {len(data) / 1e6:.0f} MB, over the {limits.MAX_EEG_BYTES >> 20} MB limit")
    if not data:
        raise EegFileError("truncated", f"{name} is empty")
    folder = Path(tempfile.gettempdir()) / f"workbench-eeg-uploads-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    home = folder / hashlib.sha256(data).hexdigest()[:16]
    home.mkdir(mode=0o700, exist_ok=True)
    path = home / upload_name(name)
    if not path.exists():  # written whole, then renamed: a reader never sees half a file
        with tempfile.NamedTemporaryFile(dir=home, suffix=".part", delete=False) as part:
            part.write(data)
        os.replace(part.name, path)
    os.utime(home)  # stored again: the most recent
    old = sorted(folder.iterdir(), key=lambda q: q.lstat().st_mtime)
    for q in old[: max(0, len(old) - UPLOAD_KEEP)]:
        if q == home:
            continue
        if q.is_dir() and not q.is_symlink():
            shutil.rmtree(q, ignore_errors=True)
        else:  # a file of the earlier flat layout (<sha16>.edf), or anything else left there
            q.unlink(missing_ok=True)
    return str(path)
