"""Session cards and session data: the user's in-memory module and arrays, for this process only.

An ``nn.Module`` handed to ``wb.run`` becomes a session card ``session.<class>_<sha8>`` (see
:mod:`workbench.core.module_card`): kind and input shape from the data, class count from one probe
forward, layers of interest from its conv layers, sha256 of its state dict. The runner only ever works
on a private deep copy, so the user's module (weights, hooks, mode, device) is never changed. Session
cards live in a bounded registry here, never in the global zoo (``workbench zoo list``, the app's lists
and other sessions do not see them).

In-memory arrays (tensors, ndarrays, PIL images) pass the limits of user files (``workbench.io.limits``:
plain numeric dtypes, size, sample count, finite values) and are kept in a bounded store under the data id
``session:<sha12>`` (data set ``session``, unlisted), so they take the same path through the runner,
batching and data-set runs as any data id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from workbench.core.cache import BoundedCache
from workbench.core.cards import ModelCard, get_card
from workbench.core.errors import ComputeError, DataError, InputTooLargeError, WeightsError, WorkbenchError
from workbench.core.module_card import (
    MODEL_LAYOUT,
    Hints,
    Source,
    fresh_copy,
    infer_kind,
    module_card,
    module_device,
    private_copy,
    probe,
    state_sha256,
)
from workbench.core.sample import SAMPLE_KIND_FOR, Sample
from workbench.data.registry import Dataset, register_dataset
from workbench.io import limits

FAMILY = "session"
_CARDS = BoundedCache(16)  # card id -> ModelCard (each holds a reference to the user's module)
_DATA = BoundedCache(16)  # sha12 -> _Arrays


def lookup_card(model_id: str) -> ModelCard:
    """A session card by id, else the zoo's card (UnknownIdError when neither has it)."""
    card = _CARDS.get(model_id)
    return card if card is not None else get_card(model_id)


def session_cards() -> list[ModelCard]:
    """The session cards alive in this process (most recent last)."""
    return [_CARDS.get(k) for k in list(_CARDS._data)]


def card_for(module, x, hints: Hints) -> ModelCard:
    """The session card of ``module`` for data ``x`` (np.ndarray, model layout, one sample or a batch).
    Raises a one-line WorkbenchError when the module spans devices, its forward fails on ``x``, or no
    model kind fits ``x``'s shape."""
    import torch

    device = module_device(module)
    kind, batched = infer_kind(module, tuple(x.shape), hints)
    shape = tuple(hints.input_shape) or tuple(x.shape[1:] if batched else x.shape)
    first = torch.as_tensor(np.asarray(x[:1] if batched else x[None], np.float32)).to(device)
    if hints.normalize is not None or hints.preprocess is not None:
        first = torch.as_tensor(_preprocessed(shape, kind, hints, first[0].cpu().numpy()))[None].to(device)
    out_shape, task = probe(module, first)
    sha = state_sha256(module)
    name = re.sub(r"[^a-z0-9_]", "", type(module).__name__.lower())[:24] or "module"
    settings = repr((kind, shape, hints.classes, hints.normalize, hints.channel_names, hints.sfreq,
                     id(hints.preprocess) if hints.preprocess else None))
    card_id = f"{FAMILY}.{name}_{hashlib.sha256((sha + settings).encode()).hexdigest()[:8]}"
    card = module_card(card_id, module, _source(module, sha), hints, input_shape=shape, kind=kind,
                       out_shape=out_shape, task=task)
    _CARDS.put(card.id, card)
    return card


def _preprocessed(shape, kind, hints, one: np.ndarray) -> np.ndarray:
    from workbench.core.module_card import make_preprocess

    sample = Sample("probe", SAMPLE_KIND_FOR[kind], one, meta={"layout": MODEL_LAYOUT})
    return make_preprocess(kind, shape, hints.normalize, hints.preprocess)(sample)


def _source(module, sha: str) -> Source:
    def load():
        mine = private_copy(module)
        if state_sha256(mine) != sha:
            raise WeightsError("your module's weights changed since its session card was made",
                               "pass the module to wb.run again (a new card is made for the new weights)")
        return mine

    return Source(load=load, build=lambda: fresh_copy(module), sha256=sha, weights_source="user")


# ---- in-memory data ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Arrays:
    kind: str  # sample kind: image | signal | vector
    x: np.ndarray  # (N, ...) float32, read-only
    labels: tuple
    layout: str  # "model" (shaped like the model input) | "raw" (the data registry's sample layout)


def check_array(x, name: str = "data") -> np.ndarray:
    """The io limits of a decoded user file, applied to an in-memory array: plain numbers (bool, int,
    float), at most ``MAX_ARRAY_BYTES``, not empty, finite. Returns a float32 copy."""
    try:
        if hasattr(x, "detach"):  # a torch tensor, on any device
            x = x.detach().to("cpu").numpy()
        arr = np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"{name} is not an array ({type(e).__name__})", "pass a tensor or ndarray") from None
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf" or arr.dtype.fields is not None:
        raise DataError(f"{name} holds {arr.dtype} values, not plain real numbers", "pass a float or integer array")
    if arr.nbytes > limits.MAX_ARRAY_BYTES:
        raise InputTooLargeError(f"{name} is {arr.nbytes / 1e6:.0f} MB, over the "
                                 f"{limits.MAX_ARRAY_BYTES >> 20} MB limit", "pass fewer samples at a time")
    if arr.size == 0:
        raise DataError(f"{name} is empty ({arr.shape})", "pass at least one sample")
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{name} holds NaN or infinite values", "clean the data first")
    return out


def store_arrays(x: np.ndarray, kind: str, layout: str, labels=None) -> str:
    """Keep a checked batch ``x`` (N, ...) float32 of sample ``kind`` and return its data id ``session:<sha12>``."""
    n = int(x.shape[0])
    if n > limits.MAX_DATASET_SAMPLES:
        raise InputTooLargeError(f"data holds {n} samples, over the {limits.MAX_DATASET_SAMPLES} limit",
                                 "pass fewer samples at a time")
    labs = _labels(labels, n)
    key = hashlib.sha256(x.tobytes() + repr((x.shape, kind, layout, labs)).encode()).hexdigest()[:12]
    x = x.copy()
    x.flags.writeable = False
    _DATA.put(key, _Arrays(kind, x, labs, layout))
    return f"{FAMILY}:{key}"


def _labels(labels, n: int) -> tuple:
    if labels is None:
        return (None,) * n
    arr = check_array(labels, "labels").reshape(-1)
    if arr.size != n or (arr != np.round(arr)).any() or (arr < 0).any():
        raise DataError(f"labels must be {n} class indices >= 0, got {arr.size} values",
                        "pass labels as integers, one per sample")
    return tuple(int(v) for v in arr)


@register_dataset
class SessionData(Dataset):
    """Arrays handed to ``wb.run`` in this process (``session:<sha12>[:selector]``); not listed anywhere."""

    name, kind = FAMILY, "image"
    about = "arrays passed to wb.run in this Python session"
    listed = False

    def __init__(self, key: str = "") -> None:
        self.key = key
        self.entry: _Arrays | None = _DATA.get(key)
        if self.entry is None:
            raise DataError(f"session data {key!r} is no longer held (only the latest 16 arrays are kept)",
                            "pass the array to wb.run again")
        self.kind = self.entry.kind

    @classmethod
    def open(cls, rest: str, expect: str = "") -> tuple[Dataset, str]:
        key, _, selector = rest.partition(":")
        return cls(key), selector

    def items(self, split: str = "") -> list[str]:
        return [f"{FAMILY}:{self.key}:{i}" for i in range(len(self.entry.x))]

    def get(self, sample_id: str) -> Sample:
        i = int(sample_id.rsplit(":", 1)[1])
        return Sample(sample_id, self.entry.kind, self.entry.x[i].copy(), label=self.entry.labels[i],
                      source="wb.run", meta={"layout": self.entry.layout})


# ---- training data for analyzers that train or prune (learning_stop, lrp_pruning) -----------------------

def with_training_data(card: ModelCard, training_data, seed: int = 0) -> ModelCard:
    """``card`` with ``extra["training_data"](split) -> (x, y)`` from the user's labelled arrays, the way zoo
    cards carry their built-in splits. ``training_data``: ``(x, y)`` (a seeded 20 % is held out as the test
    split) or ``{"train": (x, y), "test": (x, y)}``; x shaped like the model input (model-ready), y class
    indices below the card's class count. The arrays pass the io limits and are kept as session data."""
    import dataclasses

    if isinstance(training_data, dict):
        if set(training_data) != {"train", "test"}:
            raise DataError(f"training_data has keys {sorted(training_data)}", 'use {"train": (x, y), "test": (x, y)}')
        splits = {k: _pair(v, card, k) for k, v in training_data.items()}
    else:
        x, y = _pair(training_data, card, "training_data")
        order = np.random.default_rng(seed).permutation(len(y))
        n_test = max(1, len(y) // 5)
        if len(y) < 10:
            raise DataError(f"training_data holds {len(y)} samples, too few to hold out a test split",
                            "pass at least 10 labelled samples, or {'train': ..., 'test': ...}")
        splits = {"train": (x[order[n_test:]], y[order[n_test:]]), "test": (x[order[:n_test]], y[order[:n_test]])}
    ids = {k: store_arrays(x, SAMPLE_KIND_FOR[card.kind], MODEL_LAYOUT, y) for k, (x, y) in splits.items()}

    def make(split: str):
        x, y = splits[split]
        return x, y

    return dataclasses.replace(card, extra={**card.extra, "training_data": make, "training_data_ids": ids})


def _pair(pair, card: ModelCard, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise DataError(f"{name} is a {type(pair).__name__}, not a pair (x, y)", "pass training_data=(x, y)")
    x = check_array(pair[0], f"{name} x")
    y = np.asarray(_labels(pair[1], len(x)), dtype=np.int64)
    if tuple(x.shape[1:]) != tuple(card.input_shape):
        raise DataError(f"{name} x has samples of shape {tuple(x.shape[1:])}, the model takes "
                        f"{tuple(card.input_shape)}", "pass x shaped (N, *input shape), model-ready")
    n_cls = len(card.class_names)
    if n_cls and y.max() >= n_cls:
        raise DataError(f"{name} y holds class {int(y.max())} but the model has {n_cls} outputs",
                        "labels are class indices 0..n_classes-1")
    return x, y


# ---- failures of the user's own code, in one line --------------------------------------------------------

_INPLACE = ("inplace", "in-place", "in place")


def explain_failure(exc: BaseException, analyzer: str, card: ModelCard) -> WorkbenchError | None:
    """A one-line ComputeError for an exception raised while an analyzer ran on the user's own model
    (session or user-file cards); None for zoo models (their failures are bugs and keep the traceback)."""
    if isinstance(exc, WorkbenchError) or card.family not in (FAMILY, "user"):
        return None
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    if isinstance(exc, RuntimeError) and any(w in first.lower() for w in _INPLACE):
        return ComputeError(f"{analyzer} failed on {card.id}: its forward changes a tensor in place, which "
                            f"breaks the gradients and hooks {analyzer} needs ({first})",
                            "write forward without in-place ops: x = x + y instead of x += y, torch.relu(x) "
                            "instead of x.relu_() or ReLU(inplace=True)")
    return ComputeError(f"{analyzer} failed on your model {card.id} ({type(exc).__name__}: {first})",
                        "check that forward runs on this data and returns logits; try another analyzer or config")
