"""Floor 1: the one registry of data sets (built-in and the user's own), and samples addressed by id.

Data ids (see workbench.data.registry for the selector grammar every set shares):
  ``digits:17``             one sklearn digit (8x8, values scaled to [0, 1])
  ``digits:test``           the whole fixed test split (450); ``digits:test:16`` its first 16,
                            ``digits:test:0-449`` positions 0..449 of it
  ``mnist1d:3``             one procedurally generated mnist1d signal (1 x 40)
  ``moons:N``, ``circles:test``  the 2-D toy sets
  ``skimage:chelsea``       a bundled scikit-image picture (never the downloading ones)
  ``upload:<sha12>``        an image decoded by ``workbench.io`` and kept in a bounded store
  ``eeg_synth.drowsy``      96 windows (30 x 384, uV) of the synthetic drowsiness EEG's test subjects;
                            ``:subject:S``, ``:train`` / ``:test`` / ``:all``, ``:N`` or ``:N,M`` select others
  ``folder:DIR``, ``npz:FILE.npz``, ``edf:FILE.edf``  the user's own sets (workbench.data.user)
A bare path to a PNG/JPEG, an .npz/.npy, an EEG recording or a folder stands for the matching id.
Other packages add data sets under the entry-point group ``workbench.datasets``.
"""

import workbench.data.builtin  # noqa: F401 - registers the built-in sets
import workbench.data.user  # noqa: F401 - registers folder:, npz:, edf:, image:
from workbench.data.builtin import store_upload
from workbench.data.registry import (
                                     Dataset,
                                     dataset_arrays,
                                     datasets_for,
                                     get_dataset,
                                     get_samples,
                                     list_datasets,
                                     list_items,
                                     list_sets,
                                     register_dataset,
                                     resolve,
)

__all__ = ["Dataset", "dataset_arrays", "datasets_for", "get_dataset", "get_samples", "list_datasets",
           "list_items", "list_sets", "register_dataset", "resolve", "store_upload"]
