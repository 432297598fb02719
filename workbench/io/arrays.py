"""Decode user arrays (``.npy``, ``.npz``) with limits checked before any data is decoded.

Never unpickles: object arrays are refused by their header (``allow_pickle`` stays False). An ``.npz``
is a zip of ``.npy`` members; each member's header (shape, dtype) is read from the archive and checked
against :mod:`workbench.io.limits` before its data is read, so a small file cannot inflate into a
huge array.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from workbench.core.errors import DataError, InputTooLargeError
from workbench.io import limits

ARRAY_SUFFIXES = (".npy", ".npz")


def _stat(p: Path) -> int:
    try:
        size = p.stat().st_size
    except OSError:
        raise DataError(f"cannot read {p}", "check the path") from None
    if not p.is_file():
        raise DataError(f"{p} is not a file", "give an .npy or .npz file")
    if size > limits.MAX_ARRAY_FILE_BYTES:
        raise InputTooLargeError(f"{p.name} is {size / 1e6:.0f} MB, over the "
                                 f"{limits.MAX_ARRAY_FILE_BYTES >> 20} MB limit", "split the array into files")
    if size == 0:
        raise DataError(f"{p.name} is empty")
    return size


def _header(f, name: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Read an .npy header from ``f`` (positioned at its start): shape, dtype, fortran order."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, OSError, SyntaxError, EOFError) as e:
        raise DataError(f"{name} is not a valid .npy array ({str(e).splitlines()[0][:80] if str(e) else ''})",
                        "save it with numpy.save / numpy.savez") from None
    return tuple(shape), dtype, fortran


def _check(shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    if dtype.hasobject or dtype.kind not in limits.ARRAY_DTYPES or dtype.fields is not None:
        raise DataError(f"{name} holds {dtype} values, not plain numbers or text",
                        "save numbers (bool, int or float) or fixed-width text only, never objects")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > limits.MAX_ARRAY_BYTES:
        raise InputTooLargeError(f"{name} decodes to {nbytes / 1e6:.0f} MB, over the "
                                 f"{limits.MAX_ARRAY_BYTES >> 20} MB limit", "split the array into files")


def _read(f, name: str) -> np.ndarray:
    shape, dtype, _ = _header(f, name)
    _check(shape, dtype, name)
    f.seek(0)
    try:
        arr = np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{name} could not be decoded ({type(e).__name__})",
                        "the file may be truncated or corrupt") from None
    if arr.shape != shape:
        raise DataError(f"{name} is truncated: {arr.shape} read, {shape} declared")
    return arr


def load_arrays(path: str | Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """An ``.npy`` file -> ``{"x": array}``; an ``.npz`` -> its members (only ``keys`` when given; a
    missing key is simply absent). Raises DataError / InputTooLargeError with one line."""
    p = Path(path).expanduser()
    if p.suffix.lower() not in ARRAY_SUFFIXES:
        raise DataError(f"{p.name} is not an .npy or .npz file", "save the array with numpy.save or numpy.savez")
    _stat(p)
    if p.suffix.lower() == ".npy":
        with p.open("rb") as f:
            return {"x": _read(f, p.name)}
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError):
        raise DataError(f"{p.name} is not a valid .npz (zip) archive", "save it with numpy.savez") from None
    with zf:
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        total = sum(i.file_size for i in members.values() if keys is None or i.filename[:-4] in keys)
        if total > limits.MAX_ARRAY_BYTES:
            raise InputTooLargeError(f"{p.name} declares {total / 1e6:.0f} MB of arrays, over the "
                                     f"{limits.MAX_ARRAY_BYTES >> 20} MB limit", "split the arrays into files")
        out = {}
        for key, info in members.items():
            if keys is not None and key not in keys:
                continue
            try:
                with zf.open(info) as f:
                    out[key] = _read_member(f, f"{p.name}[{key}]")
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DataError(f"{p.name}[{key}] could not be read ({type(e).__name__})",
                                "the file may be truncated or corrupt") from None
        return out


def _read_member(f, name: str) -> np.ndarray:
    """A zip member is not seekable in every Python: check the header on a first pass, then read it."""
    import io

    head = f.read(65536 + 16)  # a header is at most 64 KiB (numpy's own limit for version 1/2 headers)
    shape, dtype, _ = _header(io.BytesIO(head), name)
    _check(shape, dtype, name)
    return _read(io.BytesIO(head + f.read()), name)
