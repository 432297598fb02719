"""A model card for any ``torch.nn.Module``: the user's own network, in memory (``wb.run``) or built by
the user's own file (``--model file.py:fn``).

What a zoo card states by hand is inferred here: the kind from the first conv/linear layer (or from the
data's shape), the number of classes from one probe forward, the layers of interest (the conv layers,
deepest first: the last one is Grad-CAM's), and the sha256 of the state dict. Preprocessing is the
identity, or ``(x - mean) / std`` per channel when ``normalize=(mean, std)`` is given.

Samples reach a module card in two layouts: raw (the data registry's images (H, W[, 3]) in [0, 1] and
signals (C, T)), which are brought to ``input_shape``; and model-ready (``meta["layout"] == "model"``:
in-memory arrays already shaped like ``input_shape``), which are only normalized.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

import numpy as np

from workbench.core.cards import ModelCard
from workbench.core.errors import DataError, UnsupportedModelError
from workbench.core.sample import Sample

#: the layout marker of in-memory samples already shaped like the model's input
MODEL_LAYOUT = "model"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Hints:
    """What the user may state about their module; everything else is inferred.

    ``kind``: "image2d" | "signal1d" | "eeg" | "vector" ("" = inferred); ``input_shape``: one sample as the
    model takes it, (C, H, W), (C, T) or (D,) (() = inferred); ``classes``: class names (() = "0".."K-1");
    ``normalize``: (mean, std), scalars or one value per channel; ``channel_names`` and ``sfreq`` (Hz) make
    a signal model an EEG model; ``preprocess``: the user's own function of one sample, applied last."""

    kind: str = ""
    input_shape: tuple = ()
    classes: tuple = ()
    normalize: tuple | None = None
    channel_names: tuple = ()
    sfreq: float | None = None
    title: str = ""
    default_data: str = ""
    #: ``f(x) -> x`` on one model-layout sample (float32 ndarray), instead of ``normalize``
    preprocess: object = None


def first_layer_kind(module) -> str:
    """The kind the module's first conv/linear layer takes: image2d (Conv2d), signal1d (Conv1d),
    vector (Linear first), "" (none of these)."""
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return "image2d"
        if isinstance(m, nn.Conv1d):
            return "signal1d"
        if isinstance(m, nn.Linear):
            return "vector"
    return ""


def in_channels(module) -> int | None:
    """Input channels (or features) of the first conv/linear layer, None when there is none."""
    from torch import nn

    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return int(m.in_channels)
        if isinstance(m, nn.Linear):
            return int(m.in_features)
    return None


_NDIM = {"image2d": 3, "signal1d": 2, "eeg": 2, "vector": 1}
_SHAPES = "images (N, C, H, W), signals (N, C, T) or vectors (N, D)"


def infer_kind(module, shape: tuple, hints: Hints) -> tuple[str, bool]:
    """(kind, batched) for data of ``shape`` fed to ``module``. The module's first layer decides between
    one sample and a batch ((C, H, W) is one image for a Conv2d net, a batch of signals for a Conv1d net);
    without a conv/linear layer the data's rank decides. Raises DataError when no kind fits."""
    by_rank = {4: "image2d", 3: "signal1d", 2: "vector", 1: "vector"}.get(len(shape), "")
    conv = first_layer_kind(module)
    kind = hints.kind or (conv if conv in ("image2d", "signal1d") else by_rank)  # a Flatten+Linear net takes any rank
    if not hints.kind and hints.channel_names and hints.sfreq and len(shape) in (2, 3):
        kind = "eeg"  # channels x time, whatever the first conv is (braindecode nets lift EEG to Conv2d inside)
    need = _NDIM.get(kind)
    if need is None or len(shape) not in (need, need + 1):
        what = f"a {kind} model takes {_NDIM[kind] + 1}-D batches" if kind in _NDIM else "no model kind fits it"
        raise DataError(f"data of shape {tuple(shape)} matches no input of this model ({what})",
                        f"pass {_SHAPES}; one sample without the batch axis is fine too")
    return kind, len(shape) == need + 1


def state_sha256(module) -> str:
    """sha256 over every state-dict entry (name, dtype, shape, bytes) in name order: equal weights, equal hash."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def layers_of_interest(module, kind: str) -> tuple[str, ...]:
    """The conv layers of the kind's dimension, deepest first (at most four): Grad-CAM takes the first,
    as on the zoo cards."""
    from torch import nn

    conv = {"image2d": nn.Conv2d, "signal1d": nn.Conv1d, "eeg": nn.Conv1d}.get(kind)
    names = [n for n, m in module.named_modules() if conv is not None and isinstance(m, conv)]
    if kind == "eeg" and not names:  # EEG nets that lift (C, T) to a 2-D map inside (EEGNet, ShallowFBCSPNet)
        names = [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    return tuple(reversed(names[-4:]))


#: the user's own model files (os.pathsep-separated .py paths): set by `workbench run --model FILE.py:FN` and
#: `workbench app --models FILE.py`, read by the ``user.*`` card factory (models/user_code.py)
USER_MODELS_ENV = "WORKBENCH_USER_MODELS"
#: safetensors weights for those functions: os.pathsep-separated ``FUNCTION=PATH`` entries
USER_WEIGHTS_ENV = "WORKBENCH_USER_WEIGHTS"


def without_inplace(module):
    """Switch off in-place activations (``inplace=True``) on a module the workbench owns: hooks must see
    their inputs intact. Returns the module."""
    for m in module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return module


def private_copy(module):
    """A deep copy the workbench may move, hook and put in eval mode; in-place activations are switched
    off on the copy (hooks must see their inputs intact). The user's module is never touched."""
    try:
        out = copy.deepcopy(module)
    except Exception as e:  # noqa: BLE001 - any failure of a user module's own __deepcopy__
        raise UnsupportedModelError(f"your module cannot be copied ({type(e).__name__}: {_first(e)})",
                                    "the workbench never changes your module, so it works on a deep copy; "
                                    "make the module deep-copyable (no open files or locks as attributes)") from None
    return without_inplace(out)


def fresh_copy(module):
    """A copy with every layer re-initialized (``reset_parameters``), for analyzers that compare trained
    weights with an untrained network of the same architecture (seeded by the caller)."""
    out = private_copy(module)
    for m in out.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return out


def _first(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:160]


def module_device(module) -> str:
    """The one device of the module's parameters and buffers ("cpu" when it has none).
    Raises UnsupportedModelError for a module spread over several devices or left on the meta device."""
    devices = sorted({str(t.device) for t in [*module.parameters(), *module.buffers()]})
    if len(devices) > 1:
        raise UnsupportedModelError(f"your module's weights are on several devices ({', '.join(devices)})",
                                    "move it to one device first, e.g. model.to('cpu') or model.to('cuda')")
    if devices and devices[0] == "meta":
        raise UnsupportedModelError("your module's weights are on the meta device (not materialized)",
                                    "load real weights, e.g. model.to_empty(device='cpu') and load_state_dict")
    return devices[0] if devices else "cpu"


def probe(module, x) -> tuple[tuple, str]:
    """One forward of ``x`` (a small batch) through a private copy, without gradients: the output shape and
    the task it implies ("classification" for (N, K) logits, "image2image" for an output of the input's
    rank). Raises a one-line UnsupportedModelError naming the failure and the fix."""
    import torch

    model = private_copy(module).eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # noqa: BLE001 - the user's forward can raise anything
        raise UnsupportedModelError(
            f"your model's forward failed on data of shape {tuple(x.shape)} ({type(e).__name__}: {_first(e)})",
            "pass data shaped like the model's training inputs (one sample or a batch), or fix forward") from None
    if not isinstance(out, torch.Tensor):
        raise UnsupportedModelError(f"your model returned a {type(out).__name__}, not a tensor",
                                    "return the logits (N, classes) from forward, e.g. wrap the model")
    if out.dim() == 2 and out.shape[0] == x.shape[0]:
        return tuple(out.shape), "classification"
    if out.dim() == x.dim() and out.dim() >= 3:
        return tuple(out.shape), "image2image"
    raise UnsupportedModelError(f"your model returned shape {tuple(out.shape)} for input {tuple(x.shape)}",
                                "return logits (N, classes), or an image/signal of the input's rank")


# ---- preprocessing and display ------------------------------------------------------------------------

def _norm(normalize, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    if normalize is None:
        return None
    mean, std = (np.asarray(v, np.float32).reshape(-1) for v in normalize)
    if {mean.size, std.size} - {1, channels} or (std == 0).any():
        raise DataError(f"normalize=(mean, std) needs 1 or {channels} values each and std != 0",
                        "e.g. normalize=((0.5,), (0.5,))")
    return mean, std


def _to_input(sample: Sample, kind: str, shape: tuple) -> np.ndarray:
    """A raw sample brought to ``shape`` (float32): images to the model's channels and size (bilinear),
    signals and vectors as they are (their shape must match)."""
    arr = np.asarray(sample.array, dtype=np.float32)
    if sample.meta.get("layout") == MODEL_LAYOUT or kind != "image2d":
        if arr.shape != tuple(shape):
            raise DataError(f"sample {sample.id!r} has shape {arr.shape}, the model takes {tuple(shape)}",
                            "pass data shaped like the model's input")
        return arr
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DataError(f"image {sample.id!r} has shape {arr.shape}, expected (H, W) or (H, W, 3)",
                        "pass a grayscale or RGB picture")
    c = shape[0]
    if c == 1:
        planes = (arr @ _LUMA if arr.ndim == 3 else arr)[None]
    elif c == 3:
        planes = (np.repeat(arr[..., None], 3, -1) if arr.ndim == 2 else arr).transpose(2, 0, 1)
    else:
        raise DataError(f"the model takes {c}-channel images; {sample.id!r} is a picture",
                        f"pass a ({c}, H, W) array instead")
    import torch

    t = torch.from_numpy(np.ascontiguousarray(planes))[None]
    if tuple(t.shape[-2:]) != tuple(shape[1:]):
        t = torch.nn.functional.interpolate(t, size=tuple(shape[1:]), mode="bilinear", align_corners=False,
                                            antialias=True)
    return t[0].numpy()


def make_preprocess(kind: str, shape: tuple, normalize, user_fn=None):
    """``preprocess(sample) -> float32 shape``: to the input layout, then ``(x - mean) / std`` per channel,
    then the user's own ``user_fn(x) -> x`` when given."""
    stats = _norm(normalize, shape[0])

    def preprocess(sample: Sample) -> np.ndarray:
        x = _to_input(sample, kind, shape)
        if not np.isfinite(x).all():
            raise DataError(f"{sample.id!r} holds NaN or infinite values", "clean the data first")
        if stats is not None:
            extra = (1,) * (len(shape) - 1)
            x = (x - stats[0].reshape(-1, *extra)) / stats[1].reshape(-1, *extra)
        if user_fn is not None:
            x = _apply(user_fn, x, sample.id)
        return x.astype(np.float32)

    return preprocess


def _apply(user_fn, x: np.ndarray, sample_id: str) -> np.ndarray:
    try:
        out = np.asarray(user_fn(x), dtype=np.float32)
    except Exception as e:  # noqa: BLE001 - the user's function can raise anything
        raise DataError(f"your preprocess failed on {sample_id!r} ({type(e).__name__}: {_first(e)})",
                        "it gets one sample as a float32 ndarray shaped like the model input") from None
    if out.shape != x.shape or not np.isfinite(out).all():
        raise DataError(f"your preprocess returned shape {out.shape} (or non-finite values) for {x.shape}",
                        "return finite values of the same shape")
    return out


def make_display(kind: str, shape: tuple):
    """``display(sample)``: images (H, W, 3) in [0, 1] at the input size (model-ready arrays are scaled
    to [0, 1] per sample unless already inside it); signals (C, T) and vectors (D,) as they are."""

    def display(sample: Sample) -> np.ndarray:
        x = _to_input(sample, kind, shape)
        if kind != "image2d":
            return x.astype(np.float32)
        img = np.repeat(x[0][..., None], 3, -1) if x.shape[0] != 3 else x.transpose(1, 2, 0)
        if x.shape[0] not in (1, 3):
            img = np.repeat(x.mean(0)[..., None], 3, -1)
        lo, hi = float(img.min()), float(img.max())
        if lo < 0 or hi > 1:
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        return img.astype(np.float32)

    return display


@dataclass(frozen=True)
class Source:
    """Where a module card's network comes from: ``load()`` -> a module the runner may own (a private
    copy or a fresh build), ``build()`` -> the same architecture freshly initialized (seeded by the
    caller), ``sha256`` of the weights, ``weights_source`` ("user" | "random") and ``seed``."""

    load: object
    build: object
    sha256: str
    weights_source: str = "user"
    seed: int = 0


def module_card(card_id: str, sample_module, source: Source, hints: Hints, *, input_shape: tuple,
                kind: str, out_shape: tuple, task: str) -> ModelCard:
    """The card of a module whose input (``kind``, ``input_shape``) and output (``out_shape``, ``task``)
    are known (see :func:`infer_kind` and :func:`probe`). ``sample_module`` gives the layers of interest."""
    n_out = int(out_shape[1]) if task == "classification" else 0
    classes = tuple(str(c) for c in hints.classes) or tuple(str(i) for i in range(n_out))
    if task == "classification" and len(classes) != n_out:
        raise DataError(f"{len(classes)} class names given, but the model has {n_out} outputs",
                        f"give {n_out} names, or none")
    params = int(sum(p.numel() for p in sample_module.parameters()))
    name = type(sample_module).__name__
    extra = {"channels": tuple(hints.channel_names)} if hints.channel_names else {}
    return ModelCard(
        id=card_id, kind=kind, title=hints.title or f"{name} (your model)", architecture=name,
        input_shape=tuple(int(s) for s in input_shape), build=source.build, loader=lambda card: source.load(),
        status=lambda card: {"available": True, "sha256": source.sha256, "params": params, "accuracy": None,
                             "note": "your own model"},
        preprocess=make_preprocess(kind, tuple(input_shape), hints.normalize, hints.preprocess),
        display=make_display(kind, tuple(input_shape)), weights_source=source.weights_source,
        dataset="yours", class_names=classes, default_data=hints.default_data, trained=True,
        sha256=source.sha256, seed=source.seed, layers_of_interest=layers_of_interest(sample_module, kind),
        sampling_rate=float(hints.sfreq) if hints.sfreq else None, task=task,
        description=f"{name}: your own network ({params:,} parameters), analysed on a private copy.",
        licence="yours", extra=extra)
