"""``tones``: generated harmonic tones at known pitches, one CREPE frame each (1024 samples at 16 kHz).

Each tone is a fundamental f0 (log-uniform 80-800 Hz, fixed seed) with harmonics k = 1..K below 7 kHz at
amplitude 1/k and random phases, plus faint white noise (SNR ~ 40 dB). Its label is the CREPE pitch bin
nearest to f0: CREPE (Kim et al. 2018) maps 360 bins of 20 cents from 1997.38 cents (31.7 Hz) to 2005.5 Hz, the
constants of torchcrepe.convert, restated here in numpy so that listing data sets never imports torch.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from workbench.data.builtin import _Indexed
from workbench.data.registry import register_dataset

SAMPLE_RATE = 16000  # Hz, CREPE's rate
FRAME = 1024  # samples, CREPE's window
N_TONES = 50
TONES_SEED = 0
F0_RANGE = (80.0, 800.0)  # Hz
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0 (torchcrepe.convert.bins_to_cents)


def bin_cents(b) -> np.ndarray:
    """Centre of CREPE bin(s) ``b`` in cents above 10 Hz (torchcrepe.convert.bins_to_cents without its dither)."""
    return CENTS_PER_BIN * np.asarray(b, dtype=np.float64) + CENTS_OFFSET


def bin_frequency(b) -> np.ndarray:
    """Centre of CREPE bin(s) ``b`` in Hz."""
    return 10.0 * 2.0 ** (bin_cents(b) / 1200.0)


def frequency_bin(f) -> np.ndarray:
    """The CREPE bin nearest to frequency ``f`` (Hz)."""
    cents = 1200.0 * np.log2(np.asarray(f, dtype=np.float64) / 10.0)
    return np.clip(np.rint((cents - CENTS_OFFSET) / CENTS_PER_BIN), 0, PITCH_BINS - 1).astype(np.int64)


def bin_names() -> tuple[str, ...]:
    """Class names of the 360 bins: the nearest note and its offset in cents, and the bin's frequency,
    e.g. ``"C4 +2c (262.3 Hz)"``."""
    notes = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    out = []
    for b in range(PITCH_BINS):
        f = float(bin_frequency(b))
        midi = 69 + 12 * np.log2(f / 440.0)
        m = int(np.rint(midi))
        out.append(f"{notes[m % 12]}{m // 12 - 1} {round(100 * (midi - m)):+d}c ({f:.1f} Hz)")
    return tuple(out)


@functools.lru_cache(maxsize=1)
def tones() -> dict:
    """x (N, 1024) float32, y (N,) nearest bins, f0 (N,) Hz; every tone is in the ``test`` split."""
    rng = np.random.default_rng(TONES_SEED)
    f0 = np.exp(rng.uniform(np.log(F0_RANGE[0]), np.log(F0_RANGE[1]), N_TONES))
    t = np.arange(FRAME) / SAMPLE_RATE
    x = np.zeros((N_TONES, FRAME))
    for i, f in enumerate(f0):
        for k in range(1, int(7000 // f) + 1):
            x[i] += np.sin(2 * np.pi * k * f * t + rng.uniform(0, 2 * np.pi)) / k
        x[i] *= 0.5 / np.abs(x[i]).max()
        x[i] += rng.normal(0, 0.005, FRAME)
    return {"x": x.astype(np.float32), "y": frequency_bin(f0), "f0": f0, "train": np.arange(0),
            "test": np.arange(N_TONES)}


@register_dataset
class Tones(_Indexed):
    name, kind, size, classes = "tones", "signal", N_TONES, PITCH_BINS
    model_kinds = ("signal1d",)
    splits = ("test",)
    input_shape: ClassVar[tuple[int, ...]] = (1, FRAME)  # CREPE frames: offered to (1, 1024) models only
    about = (f"{N_TONES} generated harmonic tones, f0 log-uniform 80-800 Hz (seed {TONES_SEED}), 1024 samples at "
             "16 kHz; label = nearest CREPE pitch bin")

    def _data(self, **kwargs) -> dict:
        return tones()

    def get(self, sample_id: str):
        s = super().get(sample_id)
        f0 = float(tones()["f0"][int(sample_id.rsplit(":", 1)[1])])
        return type(s)(s.id, s.kind, s.array, s.label, bin_names()[s.label], s.source,
                       meta={"sfreq": SAMPLE_RATE, "f0_hz": f0})
