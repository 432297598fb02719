"""Weights from outside the repo: user safetensors (validated) and pinned zoo checkpoints.

Nothing user-supplied is ever unpickled. A pickle checkpoint is loaded only when its
sha256 matches the one pinned on a zoo card, and then with ``weights_only=True`` given
explicitly so no environment variable can turn safe loading off.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from workbench.core.errors import InputTooLargeError, WeightsError
from workbench.io import limits


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def refuse_unsafe_environment() -> None:
    """Refuse to run when the environment disables torch's safe loading; force it on."""
    if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").strip() not in ("", "0"):
        raise WeightsError("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set, which disables safe loading",
                           "unset it before starting the workbench")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"


def load_pinned_checkpoint(path: str | Path, sha256: str) -> dict:
    """Load a zoo pickle checkpoint whose sha256 is pinned on its card (tensors only)."""
    import torch

    refuse_unsafe_environment()
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"checkpoint {p} is missing", "reinstall the package that ships it")
    got = sha256_file(p)
    if got != sha256:
        raise WeightsError(f"checkpoint {p.name} has sha256 {got[:16]}..., expected {sha256[:16]}...",
                           "the file was changed or replaced; reinstall it")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError / RuntimeError variants
        raise WeightsError(f"checkpoint {p.name} refused by the safe loader ({type(e).__name__})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"checkpoint {p.name} is not a plain state dict of tensors")
    return sd


def read_safetensors_header(data: bytes) -> dict:
    """Parse and bound-check a safetensors header without touching the tensor bytes."""
    if len(data) > limits.MAX_SAFETENSORS_BYTES:
        raise InputTooLargeError(f"weights file is {len(data) / 1e6:.0f} MB, over the "
                                 f"{limits.MAX_SAFETENSORS_BYTES / 1e6:.0f} MB limit")
    if len(data) < 8:
        raise WeightsError("file is too short to be safetensors", "upload a .safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > limits.MAX_SAFETENSORS_HEADER:
        raise InputTooLargeError(f"safetensors header is {n} bytes, over the "
                                 f"{limits.MAX_SAFETENSORS_HEADER} byte limit")
    if 8 + n > len(data):
        raise WeightsError("safetensors header runs past the end of the file", "the file is truncated")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsError("safetensors header is not valid JSON", "upload a .safetensors file") from None
    if not isinstance(header, dict):
        raise WeightsError("safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    if len(header) > limits.MAX_SAFETENSORS_TENSORS:
        raise InputTooLargeError(f"safetensors file holds {len(header)} tensors, over the "
                                 f"{limits.MAX_SAFETENSORS_TENSORS} limit")
    return header


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
        if not isinstance(meta, dict) or meta.get("dtype") not in allowed:
            dt = meta.get("dtype") if isinstance(meta, dict) else "?"
            raise WeightsError(f"tensor {key!r} has dtype {dt}", "use float32, float16 or bfloat16")
    missing = sorted(set(reference) - set(header))
    extra = sorted(set(header) - set(reference))
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise WeightsError(f"keys do not match the architecture ({what}; "
                           f"{len(missing)} missing, {len(extra)} unexpected)",
                           "export the state_dict of the same architecture")
    for key, ref in reference.items():
        shape = list(header[key].get("shape", []))
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
