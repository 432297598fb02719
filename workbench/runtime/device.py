"""Device selection: CUDA when present (and asked for by ``auto``), else CPU."""

from __future__ import annotations

from workbench.core.errors import ConfigError


def pick_device(requested: str = "auto") -> str:
    """Return ``"cuda"`` or ``"cpu"``. ``auto`` picks CUDA when torch sees a GPU."""
    import torch

    requested = (requested or "auto").lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU",
                              "use --device auto or cpu")
        return "cuda"
    if requested == "cpu":
        return "cpu"
    raise ConfigError(f"device {requested!r} is not auto, cpu or cuda")


def is_oom(exc: BaseException) -> bool:
    """True for CUDA out-of-memory and the CPU allocator's equivalent."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                              or "not enough memory" in msg)
