"""The one runner: every front end (app, CLI, tests, labs) runs analyses through :func:`run`."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import platform
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from workbench.core.analyzer import DataBatch, ModelHandle, get_analyzer
from workbench.core.cache import BoundedCache
from workbench.core.cards import ModelCard, get_card
from workbench.core.config import from_dict, to_dict
from workbench.core.errors import ComputeError, ConfigError, DataError, UnsupportedModelError
from workbench.core.hooks import count_hooks
from workbench.core.result import Check, Provenance, Result
from workbench.data import get_samples
from workbench.runtime.context import RunContext
from workbench.runtime.device import pick_device
from workbench.runtime.gate import GATE

_MODELS = BoundedCache(4)  # pristine loaded models, shared read-only across runs
_VERSIONED = ("torch", "torchvision", "captum", "zennit", "numpy", "cnn-workbench")


@dataclass
class RunSpec:
    """What to run: analyzer name, model id, data id (or path), config values (strings allowed)."""

    analyzer: str
    model: str
    data: str | None = None
    config: dict = field(default_factory=dict)
    device: str = "auto"
    seed: int = 0
    batch_size: int = 32


@dataclass
class _Cached:
    module: object
    sha256: str
    lock: threading.Lock = field(default_factory=threading.Lock)


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _load(card: ModelCard, device: str) -> _Cached:
    def make() -> _Cached:
        module = card.loader(card).to(device).eval()
        for p in module.parameters():
            p.requires_grad_(True)
        return _Cached(module, card.status(card).get("sha256", card.sha256) or "")

    return _MODELS.get_or_create((card.id, device), make)


def load_model(model_id: str, device: str = "auto") -> ModelHandle:
    """A shared, pristine model handle (do not mutate it; analyzers get copies when they must)."""
    card = get_card(model_id)
    dev = pick_device(device)
    cached = _load(card, dev)
    return ModelHandle(card, cached.module, dev, cached.sha256)


@contextlib.contextmanager
def shared_model(model_id: str, device: str = "auto") -> Iterator[ModelHandle]:
    """The shared model, held exclusively for the ``with`` block (for hooks outside the runner)."""
    card = get_card(model_id)
    dev = pick_device(device)
    cached = _load(card, dev)
    with cached.lock:
        yield ModelHandle(card, cached.module, dev, cached.sha256)


def make_batch(card: ModelCard, data_id: str, device: str) -> DataBatch:
    """Resolve a data id and preprocess it with the card's own preprocessing."""
    import torch

    samples = get_samples(data_id)
    kinds = {"image2d": "image", "signal1d": "signal", "eeg": "signal", "vector": "vector"}
    wrong = [s.id for s in samples if s.kind != kinds.get(card.kind)]
    if wrong:
        raise DataError(f"{wrong[0]} is a {samples[0].kind}, but {card.id} takes {card.kind} input",
                        f"try its default data {card.default_data}")
    x = np.stack([np.asarray(card.preprocess(s), dtype=np.float32) for s in samples])
    disp = np.stack([np.asarray(card.display(s), dtype=np.float32) for s in samples])
    return DataBatch(torch.from_numpy(x).to(device), disp, [s.id for s in samples],
                     [s.label for s in samples], data_id)


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def _fingerprint(module) -> tuple:
    """Cheap state fingerprint of a module: every tensor's in-place version counter and identity,
    and every submodule's train/eval flag. Any in-place write, swap or mode change alters it."""
    tensors = [(n, id(t), t._version) for n, t in module.state_dict(keep_vars=True).items()]
    return tuple(tensors), tuple(m.training for m in module.modules())


def _run_guarded(cls, handle: ModelHandle, batch, config, ctx, seed: int, shared: bool) -> Result:
    """Run the analyzer; fail loudly if it left a hook on the module or, for a shared module,
    changed its parameters, buffers or mode (error or not). A tampered shared model is evicted."""
    before, state = count_hooks(handle.module), _fingerprint(handle.module) if shared else None
    _seed(seed)
    try:
        with GATE.exclusive() if cls.exclusive else GATE.shared():
            return cls().run(handle, batch, config, ctx)
    finally:
        left = count_hooks(handle.module) - before
        changed = shared and _fingerprint(handle.module) != state
        if (changed or left) and shared:
            _MODELS.discard((handle.card.id, handle.device))
        if left or changed:
            what = f"left {left} hook(s) on" if left else "changed the parameters or mode of"
            raise ComputeError(f"{cls.name} {what} the shared model {handle.card.id}",
                               "this is a bug in the analyzer; the model is reloaded on the next run")


def config_values(cls, spec: RunSpec) -> dict:
    """The config values of a run: ``spec.config``, plus the data id for analyzers that build their own
    networks. When no model is given, the analyzer's Config has a ``dataset`` field, ``spec.data`` is set
    and the config does not set ``dataset``, then ``dataset`` = ``spec.data`` (so ``workbench run X
    --data mnist1d`` picks the data set). Such runs record ``config.dataset`` as their data id."""
    values = dict(spec.config)
    names = {f.name for f in dataclasses.fields(cls.Config)}
    if not spec.model and spec.data and "dataset" in names and "dataset" not in values:
        values["dataset"] = spec.data
    return values


def run(spec: RunSpec, ctx: RunContext | None = None) -> Result:
    """Validate, load, run and stamp provenance. Raises only WorkbenchError subclasses
    for anything a user can cause; a hook left behind is reported as a ComputeError."""
    t0 = time.perf_counter()
    cls = get_analyzer(spec.analyzer)
    config = from_dict(cls.Config, config_values(cls, spec))
    ctx = ctx or RunContext()
    ctx.device = pick_device(spec.device)
    ctx.seed, ctx.batch_size = spec.seed, spec.batch_size
    if not spec.model:
        if cls.needs_model:
            raise ConfigError(f"{cls.name} needs a model", "give --model ID (see `workbench zoo list`)")
        _seed(spec.seed)
        with GATE.exclusive() if cls.exclusive else GATE.shared():
            result = cls().run(None, None, config, ctx)
        return _stamp(result, cls, config, None, str(getattr(config, "dataset", "") or ""), "", ctx, spec.seed, t0)
    card = get_card(spec.model)
    if card.kind not in cls.supports:
        raise UnsupportedModelError(f"{cls.name} does not support {card.kind} models like {card.id}",
                                    f"it supports {', '.join(cls.supports)}")
    if card.task not in cls.tasks:
        raise UnsupportedModelError(f"{cls.name} does not handle {card.task} models like {card.id}",
                                    f"it handles {', '.join(cls.tasks)} models")
    data_id = spec.data or card.default_data
    batch = make_batch(card, data_id, ctx.device) if cls.needs_data else None  # bad data fails fast
    ctx.progress(0.0, f"loading {card.id}")
    cached = _load(card, ctx.device)
    if cls.mutates_model:  # a private copy: the shared model is only read while copying
        with cached.lock:
            module = copy.deepcopy(cached.module)
        result = _run_guarded(cls, ModelHandle(card, module, ctx.device, cached.sha256), batch, config,
                              ctx, spec.seed, shared=False)
    else:  # one run at a time on a shared module (hooks are per-module state)
        with cached.lock:
            result = _run_guarded(cls, ModelHandle(card, cached.module, ctx.device, cached.sha256),
                                  batch, config, ctx, spec.seed, shared=True)
    return _stamp(result, cls, config, card, data_id if batch is not None else "", cached.sha256, ctx,
                  spec.seed, t0)


def _stamp(result: Result, cls, config, card: ModelCard | None, data_id: str, sha: str, ctx: RunContext,
           seed: int, t0: float) -> Result:
    """Fill in names, config, the finite-values check and provenance."""
    result.analyzer, result.model, result.data = cls.name, card.id if card else "", data_id
    result.config = to_dict(config)
    bad = result.nonfinite_count()
    result.checks.append(Check("finite_values", bad == 0, bad, 0,
                               "all stored arrays are finite" if bad == 0
                               else f"{bad} NaN/inf values in the stored arrays"))
    result.provenance = Provenance(
        model_id=result.model, weights_sha256=sha, data_id=data_id, seed=seed,
        device=ctx.device, dtype=ctx.dtype, versions=_versions(),
        duration_s=round(time.perf_counter() - t0, 4),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    ctx.progress(1.0, "done")
    return result
