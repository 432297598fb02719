"""A bare path given where a data id is expected: the data id it stands for."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core.errors import UnknownIdError

_SCHEMES = {".png": "image", ".jpg": "image", ".jpeg": "image", ".npz": "npz", ".npy": "npz",
            ".mat": "edf", ".edf": "edf", ".bdf": "edf", ".fif": "edf"}
HINT = ("use digits:N, digits:test[:N|:a-b], mnist1d:N, moons:N, circles:test:N, skimage:NAME, "
        "eeg_synth.drowsy[:test], folder:DIR, npz:FILE.npz, edf:FILE.edf or a PNG/JPEG path")


def path_id(data_id: str) -> str:
    """``/x/cat.png`` -> ``image:/x/cat.png``; ``a.npz`` -> ``npz:a.npz``; an EEG file -> ``edf:...``;
    an existing folder -> ``folder:...``. UnknownIdError when ``data_id`` is none of these."""
    p = Path(data_id)
    scheme = _SCHEMES.get(p.suffix.lower())
    if scheme == "edf" or (scheme and p.exists()):  # EEG files: the reader names what is wrong with them
        return f"{scheme}:{data_id}"
    if data_id and os.sep in data_id and p.is_dir():
        return f"folder:{data_id}"
    raise UnknownIdError(f"no data {data_id!r}", HINT)
