"""The Python API: ``import workbench as wb``; the same registry and runner as the CLI and the app.

    r = wb.run("lrp", model=my_cnn, data=x, classes=names)        # any torch.nn.Module, in memory
    r = wb.run("receptive_field", model="torchvision.resnet50")   # zoo ids still work
    r                                                             # renders itself in Jupyter
    wb.report([r1, r2], "report.html")

An in-memory module becomes a session card (workbench.runtime.session): the runner works on a private
copy, so nothing of the user's module changes. In-memory data passes the limits of user files and gets a
data id ``session:<sha12>``; a string is a data id or a path, as on the command line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.core.cards import ModelCard
from workbench.core.errors import ConfigError, DataError
from workbench.core.module_card import MODEL_LAYOUT, Hints
from workbench.core.result import Result
from workbench.core.sample import SAMPLE_KIND_FOR
from workbench.runtime import session
from workbench.runtime.context import RunContext
from workbench.runtime.runner import RunSpec
from workbench.runtime.runner import run as _run_spec


def run(analyzer: str, model=None, data=None, *, labels=None, classes=None, preprocess=None, normalize=None,
        channel_names=None, sfreq=None, kind: str = "", input_shape: tuple = (), device: str | None = None,
        seed: int = 0, batch_size: int = 32, progress=None, training_data=None, **config) -> Result:
    """Run one analyzer and return its Result.

    ``model``: a torch.nn.Module (used through a private copy), a zoo or session card id, or a ModelCard.
    ``data``: a tensor or ndarray (one sample or a batch; for your own module shaped like its input, for a
    zoo model raw pixels in [0, 1] or signals), a PIL image, a path, or a data id (``digits:test``);
    ``labels``: optional class indices (N,). For your own module: ``classes`` (names), ``normalize=(mean,
    std)`` or ``preprocess`` (a function of one sample), ``channel_names`` + ``sfreq`` (Hz) for EEG,
    ``kind`` / ``input_shape`` when the data cannot tell. ``device``: None = your module's device
    (``"auto"`` for zoo ids), else "auto" | "cpu" | "cuda". ``progress``: a callable
    ``(fraction, message)``. ``training_data``: for analyzers that train or prune your own module
    (learning_stop, lrp_pruning): ``(x, y)`` model-ready with class indices (a seeded 20 % becomes the test
    split) or ``{"train": (x, y), "test": (x, y)}``. Other keywords are the analyzer's config
    (``workbench analyzers``).
    """
    hints = Hints(kind=kind, input_shape=tuple(input_shape), classes=tuple(classes or ()), normalize=normalize,
                  channel_names=tuple(channel_names or ()), sfreq=sfreq, preprocess=preprocess)
    card, data_id, dev = _resolve(model, data, labels, hints)
    if training_data is not None:
        if card is None or card.family != session.FAMILY:
            raise ConfigError("training_data is for your own in-memory module",
                              "zoo models bring their own training data: drop training_data")
        card = session.with_training_data(card, training_data, seed)
    spec = RunSpec(analyzer, card.id if card else "", data_id, config, device or dev, seed, batch_size, card=card)
    return _run_spec(spec, RunContext(on_progress=progress))


def sweep(analyzer: str, model=None, data=None, *, labels=None, classes=None, normalize=None, **kwargs):
    """Run a sweep (workbench.sweep) and return its SweepResult: ``grid={"key": [v1, v2]}``, ``seeds=range(3)``
    or "0-4", ``executor`` local | ray | ray:ADDRESS, ``workers``, ``out``/``cache``, other keywords fix
    Config values. ``model``: a zoo id, a list of ids, or one torch.nn.Module (swept in this process);
    ``data``: a data id, a list of ids, or in-memory data as in :func:`run`."""
    from workbench.sweep.api import sweep as _sweep

    if isinstance(model, (list, tuple)) or (isinstance(data, (list, tuple)) and not hasattr(data, "shape")):
        return _sweep(analyzer, model, data, **kwargs)
    card, data_id, _ = _resolve(model, data, labels, Hints(classes=tuple(classes or ()), normalize=normalize))
    return _sweep(analyzer, card.id if card else None, data_id, **kwargs)


def _resolve(model, data, labels, hints: Hints) -> tuple[ModelCard | None, str | None, str]:
    """(card or None, data id or None, default device) for the model and data a user handed over."""
    if model is None or isinstance(model, (str, ModelCard)):
        card = session.lookup_card(model) if isinstance(model, str) else model
        return card, _data_id(data, labels, card), "auto"
    if not _is_module(model):
        raise ConfigError(f"model is a {type(model).__name__}", "pass a torch.nn.Module, a zoo id or a ModelCard")
    dev = session.module_device(model)
    if data is None or isinstance(data, (str, Path)):
        raise DataError("your own module needs data to infer its input: pass data=tensor or ndarray",
                        "e.g. data=x_test[:8]; data ids work with zoo models")
    if _is_image(data):
        raise DataError("a PIL image has no batch or channel layout your module can be checked against",
                        "pass np.asarray(img) shaped like the model input, e.g. (1, H, W)")
    x = session.check_array(data)
    card = session.card_for(model, x, hints)
    batched = x.ndim == len(card.input_shape) + 1
    xs = x if batched else x[None]
    return card, session.store_arrays(xs, SAMPLE_KIND_FOR[card.kind], MODEL_LAYOUT, labels), _device_name(dev)


def _device_name(dev: str) -> str:
    return "cuda" if dev.startswith("cuda") else "cpu"


def _is_module(obj) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return isinstance(obj, torch.nn.Module)


def _is_image(obj) -> bool:
    return type(obj).__module__.startswith("PIL.")


def _data_id(data, labels, card: ModelCard | None) -> str | None:
    """A data id for ``data`` handed with a zoo (or ready) card: ids and paths pass through; arrays and
    PIL images are raw samples (images (H, W[, 3]) in [0, 1], signals (C, T), vectors (D,))."""
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, Path):
        return str(data)
    if _is_image(data):
        x = session.check_array(np.asarray(data.convert("RGB" if data.mode not in ("L", "1") else "L")), "image")
        return session.store_arrays(x[None] / 255.0, "image", "raw", labels)
    x = session.check_array(data)
    if card is None:
        raise DataError("in-memory data needs a model", "pass model=...")
    if card.family == session.FAMILY:
        batched = x.ndim == len(card.input_shape) + 1
        return session.store_arrays(x if batched else x[None], SAMPLE_KIND_FOR[card.kind], MODEL_LAYOUT, labels)
    return session.store_arrays(*_raw(x, card.kind), "raw", labels)


def _raw(x: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """In-memory raw samples for a zoo card: (batch, sample kind). Images: (N, H, W[, 3]) or (N, 1|3, H, W)
    with pixels in [0, 1] (uint8 0..255 too); signals (N, C, T); vectors (N, D); one sample without N."""
    sk = SAMPLE_KIND_FOR.get(kind, "")
    one = {"image": (2, 3), "signal": (2,), "vector": (1,)}.get(sk, ())
    if sk == "image":
        if x.ndim in (3, 4) and x.shape[-3] in (1, 3) and x.shape[-1] not in (1, 3):
            x = np.moveaxis(x, -3, -1)  # channels first -> last
        if x.shape[-1] == 1:
            x = x[..., 0]
        if x.max() > 1.0 and x.min() >= 0 and x.max() <= 255:
            x = x / 255.0
        if x.min() < 0 or x.max() > 1:
            raise DataError("zoo models take raw pictures in [0, 1] (the card normalizes them)",
                            "pass pixels in [0, 1] or uint8, not normalized tensors")
        batched = x.ndim == 4 or (x.ndim == 3 and x.shape[-1] != 3)
    else:
        batched = x.ndim == (one[0] + 1 if one else -1)
    if not batched and x.ndim not in one:
        raise DataError(f"data of shape {x.shape} is not {sk or kind} input",
                        "images (N, H, W[, 3]), signals (N, C, T), vectors (N, D)")
    return (x if batched else x[None]).astype(np.float32), sk


def report(results, path: str | Path, title: str = "CNN workbench report") -> Path:
    """One self-contained HTML report of ``results`` (Results, or folders written by ``r.save`` /
    ``workbench run``); returns its path. (``wb.report`` is the package ``workbench.report``, callable
    with the same arguments: Python binds the package to that name once it is imported.)"""
    import importlib

    return importlib.import_module("workbench.report")(results, path, title)


def weights_sha256(module) -> str:
    """The sha256 a session card records for ``module`` (over its state dict): equal weights, equal hash."""
    return session.state_sha256(module)


def zoo() -> list[dict]:
    """Every zoo model (id, kind, dataset, weights source, sha256, params), as `workbench zoo list --json`."""
    from workbench.core.cards import list_cards

    return [c.summary() for c in list_cards()]


def analyzers() -> list[dict]:
    """Every analyzer (name, kinds, config fields), as `workbench analyzers --json`."""
    from workbench.core.analyzer import list_analyzers

    return [a.describe() for a in list_analyzers()]
