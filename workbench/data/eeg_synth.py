"""Synthetic drowsiness EEG (``eeg_synth.drowsy``): a seeded stand-in for Cui et al.'s data set.

The real set (Cao et al. 2019, preprocessed by Cui et al.) holds 3-s windows of 30-channel EEG at
128 Hz from 11 subjects, labelled alert or drowsy. It cannot be downloaded here, so this module
plants what Cui et al.'s network learned from it (posterior alpha spindles as the cross-subject
drowsiness marker) into a background whose truth is known:

* background: per-channel 1/f ("pink") noise plus 4 shared pink sources mixed with per-subject
  random weights (spatial correlation), plus a white noise floor;
* drowsy windows: 1-2 alpha bursts, each 0.5-2.0 s long with a Hann envelope, at the subject's
  individual alpha frequency (IAF) +- N(0, 0.3) Hz, with spatial weights O1/Oz/O2 1.0,
  P3/Pz/P4 0.6, T5/T6 0.5, CP3/CPz/CP4 0.3, TP7/TP8 0.2 and 0.05 elsewhere;
* alert windows: background only;
* per-subject variation: gain U(0.7, 1.4), IAF U(8.5, 11.5) Hz, burst amplitude U(1.5, 2.5),
  1/f exponent U(0.8, 1.2) and noise floor U(0.05, 0.3);
* ground truth: the burst mask (channel x time) = samples where a burst envelope exceeds 0.2, on
  the posterior channels (spatial weight >= 0.5: O1 Oz O2 P3 Pz P4 T5 T6).

Amplitudes are in microvolts (background about 10 uV RMS per channel). Window counts per subject
are one third of the real set's (188, 132, 150, 148, 224, 166, 102, 264, 314, 108, 226), each
subject balanced between the classes. Generation takes well under a second and is cached.
"""

from __future__ import annotations

import functools

import numpy as np

# the layout is shared with the recording readers (workbench.io.eeg); re-exported here for callers
from workbench.core.eeg_layout import CHANNELS, CLASS_NAMES, SFREQ, WINDOW
from workbench.core.sample import Sample

NAME = "eeg_synth.drowsy"
SEED = 2022
#: windows per subject: a third of the real per-subject counts, rounded to even (balanced classes)
WINDOWS_PER_SUBJECT = (62, 44, 50, 50, 74, 56, 34, 88, 104, 36, 76)
TRAIN_SUBJECTS = (1, 2, 3, 4, 5, 6, 7, 8)  # make zoo trains on these; 9-11 are the test split
SPATIAL_WEIGHTS = {"O1": 1.0, "Oz": 1.0, "O2": 1.0, "P3": 0.6, "Pz": 0.6, "P4": 0.6, "T5": 0.5, "T6": 0.5,
                   "CP3": 0.3, "CPz": 0.3, "CP4": 0.3, "TP7": 0.2, "TP8": 0.2}
POSTERIOR = tuple(c for c in CHANNELS if SPATIAL_WEIGHTS.get(c, 0.0) >= 0.5)
BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 12.0), "beta": (12.0, 30.0)}
UV_PER_UNIT = 8.0  # one unit-std pink source = 8 uV, so the background is about 10 uV RMS
ENVELOPE_THRESHOLD = 0.2
N_SHARED = 4


def spatial_weights() -> np.ndarray:
    """(30,) float32 burst weight per channel, in CHANNELS order."""
    return np.array([SPATIAL_WEIGHTS.get(c, 0.05) for c in CHANNELS], dtype=np.float32)


def posterior_mask() -> np.ndarray:
    """(30,) bool: the posterior set (spatial weight >= 0.5)."""
    return spatial_weights() >= 0.5


def pink_noise(rng: np.random.Generator, shape: tuple, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent along the last axis, zero mean and unit std per row (float64)."""
    n = shape[-1]
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    f = np.fft.rfftfreq(n)
    scale = np.zeros_like(f)
    scale[1:] = f[1:] ** (-exponent / 2.0)
    x = np.fft.irfft(spec * scale, n=n, axis=-1)
    x -= x.mean(-1, keepdims=True)
    return x / np.maximum(x.std(-1, keepdims=True), 1e-12)


def _subject_params(rng: np.random.Generator) -> dict:
    return {"gain": rng.uniform(0.7, 1.4), "iaf": rng.uniform(8.5, 11.5), "amp": rng.uniform(1.5, 2.5),
            "exponent": rng.uniform(0.8, 1.2), "floor": rng.uniform(0.05, 0.3),
            "mix": rng.normal(0.0, 0.35, size=(len(CHANNELS), N_SHARED))}


def _bursts(rng: np.random.Generator, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """One drowsy window's burst signal (T,) in source units and its envelope mask (T,) bool."""
    t = np.arange(WINDOW) / SFREQ
    signal, mask = np.zeros(WINDOW), np.zeros(WINDOW, dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        dur = rng.uniform(0.5, 2.0)
        n = int(round(dur * SFREQ))
        start = int(rng.integers(0, WINDOW - n + 1))
        env = np.zeros(WINDOW)
        env[start:start + n] = np.hanning(n)
        freq = p["iaf"] + rng.normal(0.0, 0.3)
        signal += p["amp"] * env * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        mask |= env > ENVELOPE_THRESHOLD
    return signal, mask


def _subject(rng: np.random.Generator, n_windows: int) -> dict:
    p = _subject_params(rng)
    own = pink_noise(rng, (n_windows, len(CHANNELS), WINDOW), p["exponent"])
    shared = pink_noise(rng, (n_windows, N_SHARED, WINDOW), p["exponent"])
    x = own + np.einsum("cs,nst->nct", p["mix"], shared)
    x += p["floor"] * rng.standard_normal(x.shape)
    y = np.zeros(n_windows, dtype=np.int64)
    y[rng.permutation(n_windows)[: n_windows // 2]] = 1
    time_mask = np.zeros((n_windows, WINDOW), dtype=bool)
    w = spatial_weights().astype(np.float64)
    for i in np.flatnonzero(y):
        burst, time_mask[i] = _bursts(rng, p)
        x[i] += w[:, None] * burst[None, :]
    return {"x": (x * p["gain"] * UV_PER_UNIT).astype(np.float32), "y": y, "time_mask": time_mask,
            "params": {k: float(v) for k, v in p.items() if k != "mix"}}


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> dict:
    """The whole synthetic set for a seed (cached; arrays are read-only).

    Returns x float32 (N, 30, 384) in uV, y int64 (N,) (0 alert, 1 drowsy), subject int64 (N,)
    (1-based), mask bool (N, 30, 384) (burst samples on posterior channels), time_mask bool (N, 384),
    params (per-subject dicts: gain, iaf, amp, exponent, floor).
    """
    rng = np.random.default_rng(seed)
    parts = [_subject(rng, n) for n in WINDOWS_PER_SUBJECT]
    x = np.concatenate([p["x"] for p in parts])
    time_mask = np.concatenate([p["time_mask"] for p in parts])
    out = {"x": x, "y": np.concatenate([p["y"] for p in parts]),
           "subject": np.repeat(np.arange(1, len(parts) + 1), WINDOWS_PER_SUBJECT).astype(np.int64),
           "time_mask": time_mask, "mask": time_mask[:, None, :] & posterior_mask()[None, :, None]}
    for v in out.values():
        v.flags.writeable = False
    out["params"] = [p["params"] for p in parts]
    return out


def split_index(split: str, seed: int = SEED) -> np.ndarray:
    """Window indices of a split: train (subjects 1-8), test (9-11) or all."""
    subj = generate(seed)["subject"]
    if split == "all":
        return np.arange(len(subj))
    if split not in ("train", "test"):
        from workbench.core.errors import DataError

        raise DataError(f"split {split!r} is not train, test or all")
    inside = np.isin(subj, TRAIN_SUBJECTS)
    return np.flatnonzero(inside if split == "train" else ~inside)


def eeg_arrays(split: str = "all", seed: int = SEED) -> dict:
    """Arrays of a split: x (N, 30, 384) float32 uV, y, subject, mask (N, 30, 384), time_mask (N, 384)."""
    d, idx = generate(seed), split_index(split, seed)
    return {k: d[k][idx] for k in ("x", "y", "subject", "mask", "time_mask")} | {"index": idx}


def default_windows(seed: int = SEED, per_class_per_subject: int = 16) -> np.ndarray:
    """The default window set: the first ``per_class_per_subject`` alert and drowsy windows of each
    test subject (96 windows with the defaults), in index order."""
    d = generate(seed)
    picks = []
    for s in sorted(set(d["subject"][split_index("test", seed)].tolist())):
        for c in (0, 1):
            picks += np.flatnonzero((d["subject"] == s) & (d["y"] == c))[:per_class_per_subject].tolist()
    return np.array(sorted(picks), dtype=np.int64)


def selection(rest: str, seed: int = SEED) -> np.ndarray:
    """Window indices named by the part of a data id after ``eeg_synth.drowsy:``."""
    from workbench.core.errors import DataError

    d = generate(seed)
    n = len(d["y"])
    rest = rest.strip()
    if rest == "":
        return default_windows(seed)
    if rest in ("all", "train", "test"):
        return split_index(rest, seed)
    if rest.startswith("subject:"):
        try:
            s = int(rest.split(":", 1)[1])
        except ValueError:
            s = -1
        if s < 1 or s > len(WINDOWS_PER_SUBJECT):
            raise DataError(f"{NAME}:{rest} names no subject", f"subjects are 1..{len(WINDOWS_PER_SUBJECT)}")
        return np.flatnonzero(d["subject"] == s)
    try:
        idx = np.array([int(p) for p in rest.split(",")], dtype=np.int64)
    except ValueError:
        raise DataError(f"data id {NAME}:{rest!r} is not a window index, a list, a split or subject:S",
                        f"e.g. {NAME}:0, {NAME}:3,7, {NAME}:test or {NAME}:subject:9") from None
    if (idx < 0).any() or (idx >= n).any():
        raise DataError(f"{NAME} window index out of range in {rest!r} (0..{n - 1})")
    return idx


def samples(rest: str = "", seed: int = SEED) -> list[Sample]:
    """Samples for a data id ``eeg_synth.drowsy[:sel]`` (see :func:`samples_at`)."""
    return samples_at(selection(rest, seed).tolist(), seed)


def samples_at(indices: list[int], seed: int = SEED) -> list[Sample]:
    """Windows by index: array float32 (30, 384) in uV, label 0/1, and meta {subject, mask (30, 384) bool,
    sfreq, channels, units}."""
    d = generate(seed)
    out = []
    for i in indices:
        y = int(d["y"][i])
        meta = {"subject": int(d["subject"][i]), "mask": d["mask"][i], "sfreq": SFREQ, "channels": CHANNELS,
                "units": "uV"}
        out.append(Sample(f"{NAME}:{i}", "signal", d["x"][i], y, CLASS_NAMES[y],
                          f"synthetic drowsiness EEG (seed {seed}), subject {meta['subject']}", meta))
    return out


def list_ids(limit: int = 24, seed: int = SEED) -> list[str]:
    """Ids for pickers: the default set, the splits, each subject, then single test windows."""
    ids = [NAME, f"{NAME}:test", f"{NAME}:all"]
    ids += [f"{NAME}:subject:{s}" for s in range(1, len(WINDOWS_PER_SUBJECT) + 1)]
    return ids + [f"{NAME}:{i}" for i in default_windows(seed)[:limit].tolist()]
