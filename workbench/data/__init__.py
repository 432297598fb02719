"""Floor 1: the one registry of built-in data sets, and samples addressed by id.

Data ids:
  ``digits:17``             one sklearn digit (8x8, values scaled to [0, 1])
  ``digits:test:16``        the first 16 samples of the fixed test split
  ``mnist1d:3``             one procedurally generated mnist1d signal (1 x 40)
  ``skimage:chelsea``       a bundled scikit-image picture (never the downloading ones)
  ``upload:<sha12>``        an image decoded by ``workbench.io`` and kept in a bounded store
  ``eeg_synth.drowsy``      96 windows (30 x 384, uV) of the synthetic drowsiness EEG's test subjects;
                            ``:subject:S``, ``:train`` / ``:test`` / ``:all``, ``:N`` or ``:N,M`` select others
A path to a PNG/JPEG file is also accepted and decoded through ``workbench.io``, and so is an EEG
recording (.mat in Cui et al.'s format, .edf, .bdf, .fif), cut into 3-s windows by ``workbench.io.eeg``.
"""

from workbench.data.registry import (
                                     Sample,
                                     dataset_arrays,
                                     get_samples,
                                     list_datasets,
                                     list_items,
                                     store_upload,
)

__all__ = ["Sample", "dataset_arrays", "get_samples", "list_datasets", "list_items", "store_upload"]
