"""The EEG layout every EEG model of the workbench takes (Cui et al.'s drowsiness windows): 30 channels
in this order, 128 Hz, 3-s windows of 384 samples, microvolts, classes alert (0) / drowsy (1).

The synthetic set (workbench.data.eeg_synth) generates it and the recording readers (workbench.io.eeg)
cut files into it, so it lives below both."""

from __future__ import annotations

CHANNELS = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FT7", "FC3", "FCz", "FC4", "FT8", "T3", "C3", "Cz",
            "C4", "T4", "TP7", "CP3", "CPz", "CP4", "TP8", "T5", "P3", "Pz", "P4", "T6", "O1", "Oz", "O2")
SFREQ = 128.0  # Hz
WINDOW = 384  # samples: 3 s at 128 Hz
CLASS_NAMES = ("alert", "drowsy")
