"""Weights from outside the repo: user safetensors (validated) and pinned zoo checkpoints.

Nothing user-supplied is ever unpickled. A pickle checkpoint is loaded only when its
sha256 matches the one pinned on a zoo card, and then with ``weights_only=True`` given
explicitly so no environment variable can turn safe loading off.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path

from workbench.core.errors import InputTooLargeError, WeightsError
from workbench.io import limits


def sha256_file(path: str | Path, limit: int = limits.MAX_CHECKPOINT_BYTES) -> str:
    """sha256 of a regular file of at most ``limit`` bytes, hashed in chunks (never a FIFO or device)."""
    from workbench.io.safe import open_regular

    fd, _ = open_regular(path, limit, what="weights file", error=WeightsError)
    h, total = hashlib.sha256(), 0
    try:
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise InputTooLargeError(f"weights file {Path(path).name} grew over the {limit >> 20} MB limit")
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def refuse_unsafe_environment() -> None:
    """Refuse to run when the environment disables torch's safe loading; force it on."""
    if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").strip() not in ("", "0"):
        raise WeightsError("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set, which disables safe loading",
                           "unset it before starting the workbench")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"


def load_pinned_checkpoint(path: str | Path, sha256: str, fix: str = "the file was changed or replaced; reinstall it"
                           ) -> dict:
    """Load a pickle checkpoint whose sha256 is pinned on its card (tensors only): the zoo's own and those that
    ship inside a pinned package (ICLabel, CREPE). The file is read once, bounded, and the bytes hashed are the
    bytes loaded (no window for a swap between the check and the load). ``fix``: the hint on a mismatch."""
    import io

    import torch

    from workbench.io.safe import read_file

    refuse_unsafe_environment()
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"checkpoint {p} is missing", "reinstall the package that ships it")
    data = read_file(p, limits.MAX_CHECKPOINT_BYTES, what="weights file", error=WeightsError)
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise WeightsError(f"checkpoint {p.name} has sha256 {got[:16]}..., expected {sha256[:16]}...", fix)
    try:
        sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError / RuntimeError variants
        raise WeightsError(f"checkpoint {p.name} refused by the safe loader ({type(e).__name__})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"checkpoint {p.name} is not a plain state dict of tensors")
    return sd


#: every dtype the safetensors format defines, with its size in bytes (F8 variants are one byte)
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
_NOT_ST = "not a safetensors file"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _entry(key: str, meta, data_len: int) -> None:
    """Type-check one tensor entry: {"dtype": known, "shape": [ints >= 0], "data_offsets": [begin, end]}."""
    if not isinstance(meta, dict) or set(meta) != {"dtype", "shape", "data_offsets"}:
        got = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise WeightsError(f"safetensors entry {key[:60]!r} is not {{dtype, shape, data_offsets}} (got {got})"[:200],
                           "write the file with safetensors' save()")
    dtype, shape, offsets = meta["dtype"], meta["shape"], meta["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise WeightsError(f"tensor {key[:60]!r} has the unknown dtype {str(dtype)[:20]!r}",
                           "use float32, float16 or bfloat16")
    if not isinstance(shape, list) or len(shape) > 16 or not all(_is_int(d) and d >= 0 for d in shape):
        raise WeightsError(f"tensor {key[:60]!r} has the shape {str(shape)[:60]}, not a list of sizes >= 0")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len):
        raise WeightsError(f"tensor {key[:60]!r} has data_offsets {str(offsets)[:60]} outside the "
                           f"{data_len} data bytes", "the file is truncated or corrupt")
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_SIZES[dtype]:
        raise WeightsError(f"tensor {key[:60]!r}: {offsets[1] - offsets[0]} data bytes for shape {shape} {dtype}",
                           "the file is truncated or corrupt")


def read_safetensors_header(data: bytes) -> dict:
    """Parse and type-check a safetensors header without touching the tensor bytes -> {name: entry}
    (``__metadata__`` removed). Every malformation is one WeightsError / InputTooLargeError line."""
    if len(data) > limits.MAX_SAFETENSORS_BYTES:
        raise InputTooLargeError(f"weights file is {len(data) / 1e6:.0f} MB, over the "
                                 f"{limits.MAX_SAFETENSORS_BYTES / 1e6:.0f} MB limit")
    if len(data) < 10:
        raise WeightsError(f"{_NOT_ST} (only {len(data)} bytes)", "upload a .safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if data[8:9] != b"{":  # a pickle, zip or text renamed .safetensors: say so, not "header is 10^18 bytes"
        raise WeightsError(f"{_NOT_ST} (no JSON header after the 8-byte length)", "upload a .safetensors file")
    if n > limits.MAX_SAFETENSORS_HEADER:
        raise InputTooLargeError(f"safetensors header is {n} bytes, over the "
                                 f"{limits.MAX_SAFETENSORS_HEADER} byte limit")
    if 8 + n > len(data):
        raise WeightsError("safetensors header runs past the end of the file", "the file is truncated")
    try:
        header = json.loads(data[8:8 + n])
    except RecursionError:  # json recurses once per level; the types below then bound the depth to 3
        raise WeightsError("safetensors header nests too deeply", "write the file with safetensors' save()") from None
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise WeightsError("safetensors header is not valid JSON", "upload a .safetensors file") from None
    if not isinstance(header, dict):
        raise WeightsError("safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise WeightsError("safetensors __metadata__ is not a table of strings")
    if len(header) > limits.MAX_SAFETENSORS_TENSORS:
        raise InputTooLargeError(f"safetensors file holds {len(header)} tensors, over the "
                                 f"{limits.MAX_SAFETENSORS_TENSORS} limit")
    for key, entry in header.items():
        _entry(key, entry, len(data) - 8 - n)
    return header


def read_safetensors_file(path: str | Path, nofollow: bool = False) -> bytes:
    """The bytes of a .safetensors file named by the user (regular file, size-checked, bounded read)."""
    from workbench.io.safe import read_file

    return read_file(path, limits.MAX_SAFETENSORS_BYTES, what="weights file", nofollow=nofollow,
                     error=WeightsError, hint="give a .safetensors file")


def load_user_safetensors(data: bytes, reference: dict) -> dict:
    """Validate user safetensors bytes against an architecture's state dict; return float32 tensors.

    ``reference``: name -> tensor of the target architecture. Keys must match exactly, shapes
    must be equal, dtypes F32/F16/BF16 (upcast to float32).
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    header = read_safetensors_header(data)
    for key, meta in header.items():
        ref = reference.get(key)
        allowed = limits.SAFETENSORS_DTYPES if ref is None or ref.is_floating_point() else ("I64",)
        if meta["dtype"] not in allowed:
            dt = meta["dtype"]
            raise WeightsError(f"tensor {key!r} has dtype {dt}", "use float32, float16 or bfloat16")
    missing = sorted(set(reference) - set(header))
    extra = sorted(set(header) - set(reference))
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise WeightsError(f"keys do not match the architecture ({what}; "
                           f"{len(missing)} missing, {len(extra)} unexpected)",
                           "export the state_dict of the same architecture")
    for key, ref in reference.items():
        shape = header[key]["shape"]
        if shape != list(ref.shape):
            raise WeightsError(f"tensor {key!r} has shape {shape}, expected {list(ref.shape)}")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise WeightsError(f"safetensors file could not be read ({type(e).__name__})") from None
    out = {}
    for k, v in tensors.items():
        v = v.to(torch.float32) if v.is_floating_point() else v
        if not torch.isfinite(v).all():
            raise WeightsError(f"tensor {k!r} holds NaN or infinite values")
        out[k] = v.to(reference[k].dtype) if not reference[k].is_floating_point() else v
    return out
