"""Numpy arrays out of a pickle, and nothing else: an allow-list unpickler.

A pickle can name any importable callable and call it while it loads (``os.system`` and friends), so the
workbench never unpickles untrusted bytes with ``pickle.load``. Some real data that ships inside a package
is only published as a pickle (spkit's 14-channel Emotiv recording, ``EEG16SecData.pkl``: a tuple of a
float64 array and a list of channel names). ``load_arrays`` admits exactly what such a file needs to
rebuild numpy arrays (ndarray reconstruction, dtype, and the builtins for lists, tuples, strings and numbers
that the protocol encodes as opcodes anyway) and refuses every other global with one line: no code of the
file's choosing runs. Why by hand: numpy's own loaders (``np.load(allow_pickle=False)``) refuse every
pickle, and no well-kept library offers an allow-list unpickler.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from workbench.core.errors import DataError
from workbench.io.safe import read_file

MAX_PICKLE_BYTES = 64 * 1024**2
#: (module, name) -> the object the unpickler may hand out for it
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise DataError(f"the pickle names {module}.{name}, which is not a numpy array part",
                            "only pickles of numpy arrays, lists, tuples, dicts, strings and numbers are read")
        return found


def loads_arrays(data: bytes, name: str = "pickle"):
    """The object in ``data`` (bytes of a pickle) when it holds only numpy arrays and plain containers.
    Object-dtype arrays are refused too (they would hold further pickled objects)."""
    try:
        obj = _NumpyOnly(io.BytesIO(data)).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed pickle raises many types
        raise DataError(f"{name} is not a readable pickle of arrays ({type(e).__name__})",
                        "give the file as published, or as .npz") from None
    _check(obj, name)
    return obj


def load_arrays(path: str | Path, name: str = ""):
    """``loads_arrays`` on a file read through the safe reader (regular file, bounded size)."""
    return loads_arrays(read_file(path, MAX_PICKLE_BYTES, what="pickle"), name or Path(path).name)


def _check(obj, name: str, depth: int = 0) -> None:
    if depth > 8:
        raise DataError(f"{name} nests containers more than 8 deep", "give a flat file of arrays")
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise DataError(f"{name} holds an object-dtype array", "only numeric arrays are read")
    if isinstance(obj, (list, tuple)):
        for v in obj:
            _check(v, name, depth + 1)
    elif isinstance(obj, dict):
        for v in obj.values():
            _check(v, name, depth + 1)
