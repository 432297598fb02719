"""Decode ``.npy`` / ``.npz`` arrays (user data sets and saved results) with every size checked before
any array data is decompressed.

Never unpickles (object and structured dtypes are refused from the header). Why by hand rather than
``np.load``: ``np.load`` allocates whatever an array header claims and inflates whatever a zip member
holds, so an 18 MB file can demand gigabytes. Here, before a data byte is decompressed:

* the zip's end-of-directory record is read to bound the member count and directory size;
* each member must be stored or deflated, unencrypted, and its declared size must be one deflate can
  produce from its compressed size (at most 1032:1) and exactly its ``.npy`` header plus the data the
  header declares (zipfile never returns more than the declared size, so this bounds the inflation);
* each member's header (shape, dtype) is checked against a per-array and a total limit.

Only then is each array read, into a buffer of exactly the declared size; zipfile checks the CRC.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from workbench.core.errors import DataError, InputTooLargeError
from workbench.io import limits
from workbench.io.safe import open_binary

ARRAY_SUFFIXES = (".npy", ".npz")
_EOCD = struct.Struct("<4s4H2LH")  # zip end of central directory record (APPNOTE 4.3.16)
_HEAD_MAX = 65536 + 16  # an .npy header is at most 64 KiB (numpy's limit for format 1.0/2.0/3.0 headers)


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 10**7 else f"{n / 1e6:.1f} MB"


def _header(f, name: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Read an .npy header from ``f`` (positioned at its start): shape, dtype, fortran order."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, OSError, SyntaxError, EOFError, TypeError, RecursionError, MemoryError) as e:
        first = str(e).splitlines()[0][:80] if str(e) else type(e).__name__
        raise DataError(f"{name} is not a valid .npy array ({first})",
                        "save it with numpy.save / numpy.savez") from None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise DataError(f"{name} declares the shape {shape!r}", "save it with numpy.save / numpy.savez")
    return tuple(shape), dtype, bool(fortran)


def _check(shape: tuple[int, ...], dtype: np.dtype, name: str, kinds: str, max_bytes: int) -> int:
    """Refuse objects / records / other kinds and oversize arrays; return the data size in bytes."""
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{name} holds {dtype} values, not plain numbers or text",
                        "save numbers (bool, int or float) or fixed-width text only, never objects")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a huge shape cannot wrap around to a small size
    if nbytes > max_bytes:
        raise InputTooLargeError(f"{name} declares {shape} {dtype} = {_mb(nbytes)}, over the "
                                 f"{_mb(max_bytes)} limit", "split the array into files")
    return nbytes


def _fill(f, shape: tuple[int, ...], dtype: np.dtype, fortran: bool, nbytes: int, name: str) -> np.ndarray:
    """Read exactly ``nbytes`` of array data from ``f`` into a fresh, writable array."""
    buf = bytearray(nbytes)
    view, got = memoryview(buf), 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            raise DataError(f"{name} is truncated: {got} of {nbytes} data bytes",
                            "the file may be truncated or corrupt")
        got += n
    if dtype.itemsize == 0 or nbytes == 0:
        return np.zeros(shape, dtype=dtype, order="F" if fortran else "C")
    arr = np.frombuffer(buf, dtype=dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _directory(f, size: int, name: str) -> None:
    """Bound the zip's central directory (member count, bytes) from its end record before zipfile parses it."""
    tail_len = min(size, 65535 + _EOCD.size)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + _EOCD.size > len(tail):
        raise DataError(f"{name} is not a valid .npz (zip) archive", "save it with numpy.savez")
    _, _, _, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        raise InputTooLargeError(f"{name} uses a zip64 directory (over 65535 members or 4 GB)",
                                 "split the arrays into files")
    if entries > limits.MAX_NPZ_MEMBERS or cd_size > limits.MAX_NPZ_DIRECTORY_BYTES:
        raise InputTooLargeError(f"{name} holds {entries} members ({cd_size} directory bytes), over the limit of "
                                 f"{limits.MAX_NPZ_MEMBERS}", "save fewer arrays per file")
    f.seek(0)


def _plan(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, kinds: str, max_bytes: int) -> tuple:
    if info.flag_bits & 0x1:
        raise DataError(f"{name} is encrypted", "save it with numpy.savez")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise DataError(f"{name}: a stored member declares {info.file_size} bytes in {info.compress_size}")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > info.compress_size * limits.DEFLATE_MAX_RATIO + 1024:
            raise InputTooLargeError(f"{name} declares {_mb(info.file_size)} from {info.compress_size} compressed "
                                     "bytes, more than deflate can produce", "the file is corrupt or crafted")
    else:
        raise DataError(f"{name} uses zip compression method {info.compress_type}",
                        "save it with numpy.savez or numpy.savez_compressed")
    with zf.open(info) as f:
        head = io.BytesIO(f.read(min(info.file_size, _HEAD_MAX)))
    shape, dtype, fortran = _header(head, name)
    nbytes = _check(shape, dtype, name, kinds, max_bytes)
    if info.file_size != head.tell() + nbytes:
        raise DataError(f"{name}: the member holds {info.file_size} bytes, its header declares "
                        f"{head.tell() + nbytes}", "the file may be truncated or corrupt")
    return info, head.tell(), shape, dtype, fortran, nbytes


def read_npz(path: str | Path, *, keys=None, max_file: int, max_array: int, max_total: int, kinds: str,
             nofollow: bool = False, what: str = "arrays file") -> dict[str, np.ndarray]:
    """Members of an ``.npz`` (only ``keys`` when given; a missing key is simply absent), every limit
    checked before any data is inflated. Raises DataError / InputTooLargeError with one line."""
    name = Path(str(path)).name
    with open_binary(path, max_file, what=what, nofollow=nofollow) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise DataError(f"{name} is empty", "the file may be truncated; write it again")
        _directory(f, size, name)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error,
                NotImplementedError):  # e.g. "zip file version 6.4" from a mutated central directory
            raise DataError(f"{name} is not a valid .npz (zip) archive", "save it with numpy.savez") from None
        with zf:
            try:
                members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
                plans = {k: _plan(zf, i, f"{name}[{k}]", kinds, max_array) for k, i in members.items()
                         if keys is None or k in keys}
                total = sum(p[-1] for p in plans.values())
                if total > max_total:
                    raise InputTooLargeError(f"{name} declares {_mb(total)} of arrays, over the {_mb(max_total)} "
                                             "limit", "split the arrays into files")
                out = {}
                for key, (info, skip, shape, dtype, fortran, nbytes) in plans.items():
                    with zf.open(info) as m:
                        m.read(skip)
                        out[key] = _fill(m, shape, dtype, fortran, nbytes, f"{name}[{key}]")
                return out
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
                    RuntimeError, struct.error) as e:
                raise DataError(f"{name} could not be read ({type(e).__name__}: {str(e)[:80]})",
                                "the file may be truncated or corrupt") from None


def read_npy(path: str | Path, *, max_file: int, max_array: int, kinds: str, nofollow: bool = False,
             what: str = "array file") -> np.ndarray:
    name = Path(str(path)).name
    with open_binary(path, max_file, what=what, nofollow=nofollow) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise DataError(f"{name} is empty")
        shape, dtype, fortran = _header(f, name)
        nbytes = _check(shape, dtype, name, kinds, max_array)
        if size != f.tell() + nbytes:
            raise DataError(f"{name} holds {size} bytes, its header declares {f.tell() + nbytes}",
                            "the file may be truncated or corrupt")
        return _fill(f, shape, dtype, fortran, nbytes, name)


def load_arrays(path: str | Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A user ``.npy`` file -> ``{"x": array}``; an ``.npz`` -> its members (only ``keys`` when given; a
    missing key is simply absent). Raises DataError / InputTooLargeError with one line."""
    p = Path(path).expanduser()
    if p.suffix.lower() not in ARRAY_SUFFIXES:
        raise DataError(f"{p.name} is not an .npy or .npz file", "save the array with numpy.save or numpy.savez")
    if p.suffix.lower() == ".npy":
        return {"x": read_npy(p, max_file=limits.MAX_ARRAY_FILE_BYTES, max_array=limits.MAX_ARRAY_BYTES,
                              kinds=limits.ARRAY_DTYPES)}
    return read_npz(p, keys=keys, max_file=limits.MAX_ARRAY_FILE_BYTES, max_array=limits.MAX_ARRAY_BYTES,
                    max_total=limits.MAX_ARRAY_BYTES, kinds=limits.ARRAY_DTYPES)


def load_result_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The ``arrays.npz`` of a saved result folder (a planted symbolic link is not followed)."""
    return read_npz(path, max_file=limits.MAX_RESULT_ARRAYS_FILE_BYTES, max_array=limits.MAX_RESULT_ARRAY_BYTES,
                    max_total=limits.MAX_RESULT_ARRAYS_BYTES, kinds=limits.RESULT_DTYPES, nofollow=True,
                    what="result arrays")
