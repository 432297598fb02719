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
from workbench.core.cards import ModelCard
from workbench.core.config import from_dict, to_dict
from workbench.core.errors import ComputeError, ConfigError, DataError, UnsupportedModelError
from workbench.core.hooks import count_hooks
from workbench.core.result import Check, Provenance, Result
from workbench.core.sample import SAMPLE_KIND_FOR, Sample
from workbench.data import get_samples, resolve
from workbench.runtime import budget
from workbench.runtime.context import RunContext
from workbench.runtime.dataset_run import Plan, chunk_size, run_chunks
from workbench.runtime.device import pick_device
from workbench.runtime.gate import GATE
from workbench.runtime.session import explain_failure, lookup_card

_MODELS = BoundedCache(4)  # pristine loaded models, shared read-only across runs
#: always stamped; an analyzer adds the libraries it declares (``Analyzer.libraries``, e.g. captum, zennit)
_VERSIONED = ("torch", "torchvision", "numpy", "cnn-workbench")


@dataclass
class RunSpec:
    """What to run: analyzer name, model id, data id (or path), config values (strings allowed).
    ``card``: a model card to run instead of looking ``model`` up (e.g. a session card of an in-memory
    module; ``model`` then defaults to its id). Ids of session cards (``session.*``) resolve too."""

    analyzer: str
    model: str
    data: str | None = None
    config: dict = field(default_factory=dict)
    device: str = "auto"
    seed: int = 0
    batch_size: int = 32
    card: ModelCard | None = None

    def __post_init__(self) -> None:
        if self.card is not None and not self.model:
            self.model = self.card.id


@dataclass
class _Cached:
    module: object
    sha256: str
    lock: threading.Lock = field(default_factory=threading.Lock)


def library_versions(libraries: tuple[str, ...] = ()) -> dict:
    """Python's and the pinned libraries' versions (plus ``libraries``): provenance and sweep cell keys."""
    out = {"python": platform.python_version()}
    for name in (*_VERSIONED, *libraries):
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
    card = lookup_card(model_id)
    dev = pick_device(device)
    cached = _load(card, dev)
    return ModelHandle(card, cached.module, dev, cached.sha256)


@contextlib.contextmanager
def shared_model(model_id: str, device: str = "auto") -> Iterator[ModelHandle]:
    """The shared model, held exclusively for the ``with`` block (for hooks outside the runner)."""
    card = lookup_card(model_id)
    dev = pick_device(device)
    cached = _load(card, dev)
    with cached.lock:
        yield ModelHandle(card, cached.module, dev, cached.sha256)


def make_batch(card: ModelCard, data_id: str, device: str, samples: list[Sample] | None = None) -> DataBatch:
    """Resolve a data id (or take its ``samples``, already loaded) and preprocess them with the card's
    own preprocessing."""
    import torch

    if samples is None:
        samples = get_samples(data_id, SAMPLE_KIND_FOR.get(card.kind, ""))
    wrong = [s for s in samples if s.kind != SAMPLE_KIND_FOR.get(card.kind)]
    if wrong:
        raise DataError(f"{wrong[0].id} is a {wrong[0].kind}, but {card.id} takes {card.kind} input",
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
    except Exception as e:  # the user's own model failing is their bad input: one line, not a traceback
        explained = explain_failure(e, cls.name, handle.card)
        if explained is None:
            raise
        raise explained from e
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
    card = spec.card if spec.card is not None else lookup_card(spec.model)
    if not cls.accepts(card):
        raise UnsupportedModelError(f"{cls.name} does not support {card.kind} models like {card.id}",
                                    f"it supports {', '.join(cls.supports)}")
    if card.task not in cls.tasks:
        raise UnsupportedModelError(f"{cls.name} does not handle {card.task} models like {card.id}",
                                    f"it handles {', '.join(cls.tasks)} models")
    data_id = spec.data or card.default_data
    batch = None
    if cls.needs_data:  # bad data fails fast; too much data too, before any work (workbench/runtime/budget.py)
        dataset, ids = resolve(data_id, SAMPLE_KIND_FOR.get(card.kind, ""))
        first = dataset.load(ids[:1])
        per_input = budget.input_bytes(first[0], make_batch(card, data_id, ctx.device, first))
        budget.check(ctx.memory_budget_mb, len(ids), per_input, data_id, "decoded and model-ready inputs")
        if cls.per_sample and len(ids) > 1:  # many samples: in chunks, merged (workbench/runtime/dataset_run.py)
            return _run_dataset(cls, config, card, (dataset, ids, data_id, per_input), ctx, spec, t0)
        batch = make_batch(card, data_id, ctx.device, first if len(ids) == 1 else dataset.load(ids))
    ctx.progress(0.0, f"loading {card.id}")
    cached = _load(card, ctx.device)
    result = _execute(cls, cached, ModelHandle(card, cached.module, ctx.device, cached.sha256), batch, config,
                      ctx, spec.seed)
    return _stamp(result, cls, config, card, data_id if batch is not None else "", cached.sha256, ctx,
                  spec.seed, t0)


def _execute(cls, cached: _Cached, handle: ModelHandle, batch, config, ctx: RunContext, seed: int) -> Result:
    """The guarded analyzer call on ``handle`` (the shared module of ``cached``): a private copy for
    analyzers that mutate, else the shared module held exclusively (hooks are per-module state)."""
    if cls.mutates_model:  # a private copy: the shared model is only read while copying
        with cached.lock:
            module = copy.deepcopy(cached.module)
        return _run_guarded(cls, dataclasses.replace(handle, module=module), batch, config, ctx, seed, shared=False)
    with cached.lock:
        return _run_guarded(cls, handle, batch, config, ctx, seed, shared=True)


def _run_dataset(cls, config, card: ModelCard, data: tuple, ctx: RunContext, spec: RunSpec, t0: float) -> Result:
    """A per-sample analyzer over every sample of ``data`` = (data set, sample ids, data id, input bytes per
    sample), chunk by chunk through the same guarded call as a single run; one merged, stamped Result.
    After the first chunk the whole run's memory is projected from what that chunk keeps per sample and
    checked against the budget, so a run too big is stopped after one chunk, not at the merge."""
    dataset, ids, data_id, per_input = data
    ctx.progress(0.0, f"loading {card.id}")
    cached = _load(card, ctx.device)
    handle = ModelHandle(card, cached.module, ctx.device, cached.sha256)

    def run_chunk(chunk_ids: list[str], sub: RunContext) -> tuple[Result, list]:
        batch = make_batch(card, data_id, sub.device, dataset.load(chunk_ids))
        result = _execute(cls, cached, handle, batch, config, sub, spec.seed)
        if chunk_ids[0] == ids[0]:
            per = per_input + budget.KEEP_COPIES * budget.kept_bytes(result, len(chunk_ids))
            budget.check(ctx.memory_budget_mb, len(ids), per, data_id,
                         f"inputs and {budget.KEEP_COPIES} copies of the per-sample arrays {cls.name} keeps")
        return result, batch.labels

    result = run_chunks(Plan(ids, run_chunk, chunk_size(spec.batch_size)), ctx, cls)
    return _stamp(result, cls, config, card, data_id, cached.sha256, ctx, spec.seed, t0)


def _computed_dtype(result: Result, ctx: RunContext) -> str:
    """The precision the analyzer computed in: its own statement (``result.info["dtype"]``, e.g. LRP or
    LinearScope run in float64) wins over the run's default, so provenance never claims float32 falsely."""
    stated = result.info.get("dtype")
    return stated if isinstance(stated, str) and stated else ctx.dtype


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
        device=ctx.device, dtype=_computed_dtype(result, ctx), versions=library_versions(cls.libraries),
        duration_s=round(time.perf_counter() - t0, 4),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    ctx.progress(1.0, "done")
    return result
