"""Analyzer contract and the one registry of analyzers.

An analyzer is a class registered with :func:`register_analyzer`. It declares
``name`` (unique snake_case), ``Config`` (frozen dataclass built with
:func:`workbench.core.config.option`), ``supports`` (model kinds), ``mutates_model``
and ``run(model, data, config, ctx) -> Result``. Analyzers are found through the
``workbench.analyzers`` entry-point group, so other packages can add their own.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from workbench.core import plugins
from workbench.core.config import describe
from workbench.core.errors import UnknownIdError
from workbench.core.result import Result

KINDS = ("image2d", "signal1d", "eeg", "vector")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class ModelHandle:
    """A loaded model ready for an analyzer.

    ``module`` is in eval mode on ``device``; it is shared and must come back unchanged
    unless the analyzer declared ``mutates_model`` (then it is a private copy).
    """

    card: Any  # workbench.core.cards.ModelCard
    module: Any  # torch.nn.Module
    device: str
    weights_sha256: str


@dataclass
class DataBatch:
    """Model-ready inputs plus what is needed to show them.

    ``x``: float32 tensor (N, C, H, W) for image2d or (N, C, T) for signals, on the device,
    already preprocessed by the card. ``display``: numpy float32 in [0, 1], (N, H, W, 3)
    for images matching ``x``'s spatial size, (N, C, T) raw values for signals.
    """

    x: Any
    display: np.ndarray
    ids: list[str]
    labels: list[int | None] = field(default_factory=list)
    data_id: str = ""


class Analyzer:
    """Base class: subclasses set the class attributes and implement :meth:`run`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type]
    result_class: ClassVar[type[Result]] = Result
    supports: ClassVar[tuple[str, ...]] = ()
    #: model tasks handled (``ModelCard.task``): "classification" and/or "image2image"
    tasks: ClassVar[tuple[str, ...]] = ("classification",)
    #: architectures the method is defined for (``ModelCard.architecture``); empty = any of the kinds above
    #: (e.g. eeg_saliency's CAM is Cui et al.'s layout); model pickers offer only these
    architectures: ClassVar[tuple[str, ...]] = ()
    mutates_model: ClassVar[bool] = False
    needs_data: ClassVar[bool] = True
    #: True for analyzers that trace with torch.fx / make_fx: tracing patches process-global state,
    #: so the runner runs them alone (see workbench/runtime/gate.py)
    exclusive: ClassVar[bool] = False
    #: False for analyzers that can build what they study themselves (run gets ``model=None``
    #: when no --model is given)
    needs_model: ClassVar[bool] = True
    #: a hand-written page under pages/ (a file name, e.g. "lrp.py") that replaces the generic analyzer page
    #: built from Config metadata; empty = the generic page. Only for pages that add something the
    #: metadata cannot say (live views, model comparisons, saving artifacts).
    page: ClassVar[str] = ""
    #: distributions (pip names) the results depend on beyond torch and numpy, e.g. ("captum",): the
    #: runner stamps their versions into provenance and the conformance suite requires them there
    libraries: ClassVar[tuple[str, ...]] = ()
    #: True when ``run`` explains each sample on its own (arrays and info lists have the sample axis first):
    #: a data id naming many samples then runs in chunks that are merged (workbench/runtime/dataset_run.py)
    per_sample: ClassVar[bool] = False
    #: per_sample analyzers: how a metric or check value combines across chunks, name (fnmatch pattern) ->
    #: "mean" (weighted by samples; the default), "max", "min", "sum" or "first"
    aggregate: ClassVar[dict[str, str]] = {}
    #: per_sample analyzers: fnmatch patterns of the arrays with the sample axis first (empty = inferred:
    #: those whose length equals the chunk's sample count in every chunk)
    sample_arrays: ClassVar[tuple[str, ...]] = ()
    #: per_sample analyzers: array name (fnmatch pattern) -> its sample axis, for arrays where it is not the first
    sample_axes: ClassVar[dict[str, int]] = {}
    #: config overrides that make a conformance run take a few seconds on a small zoo model
    smoke_config: ClassVar[dict] = {}
    #: named presets one click away on the page: name -> {"about": one line (e.g. "paper scale, ~20 min on
    #: CPU, ~1 min on a GPU"), "config": overrides of the defaults}. The defaults themselves stay quick
    #: (about a minute on 2 CPU cores); a preset carries the paper-scale setting
    presets: ClassVar[dict[str, dict]] = {}
    #: a check whose verdict depends on learned weights: the conformance suite requires it to pass on a
    #: trained model and to break on a weight-randomized copy. None when no check depends on the weights;
    #: then ``headline_reason`` says why (reported as "not applicable")
    headline_check: ClassVar[str | None] = None
    headline_reason: ClassVar[str] = ""

    def run(self, model: ModelHandle | None, data: DataBatch | None, config: Any, ctx: Any) -> Result:
        raise NotImplementedError

    @classmethod
    def accepts(cls, card: Any) -> bool:
        """Whether ``card``'s kind suits this analyzer: one of ``supports`` by default. An analyzer that also takes
        some cards of another kind (identified by what the card declares, never by its id) widens this; every
        model filter (the runner, the pages' pickers) asks it rather than reading ``supports``."""
        return card.kind in cls.supports

    @classmethod
    def describe(cls) -> dict:
        return {"name": cls.name, "title": cls.title, "description": cls.description,
                "paper": cls.paper, "supports": list(cls.supports), "tasks": list(cls.tasks),
                "mutates_model": cls.mutates_model, "needs_data": cls.needs_data,
                "needs_model": cls.needs_model,
                "config": describe(cls.Config)}


_ANALYZERS: dict[str, type[Analyzer]] = {}
#: plug-ins that failed to import, shown on the home page and by the CLI (the loader's record)
PLUGIN_ERRORS = plugins.ERRORS


def _check_definition(cls: type[Analyzer]) -> None:
    if not _NAME.match(cls.name or ""):
        raise TypeError(f"analyzer name {cls.name!r} is not snake_case")
    cfg = getattr(cls, "Config", None)
    if cfg is None or not dataclasses.is_dataclass(cfg) or not cfg.__dataclass_params__.frozen:
        raise TypeError(f"{cls.name}: Config must be a frozen dataclass")
    for f in dataclasses.fields(cfg):
        if f.default is dataclasses.MISSING or "help" not in f.metadata:
            raise TypeError(f"{cls.name}: config field {f.name} needs a default and help text")
    bad = set(cls.supports) - set(KINDS)
    if not cls.supports or bad:
        raise TypeError(f"{cls.name}: supports must be a non-empty subset of {KINDS}")


def register_analyzer(cls: type[Analyzer]) -> type[Analyzer]:
    """Class decorator: validate the definition and add it to the registry."""
    _check_definition(cls)
    existing = _ANALYZERS.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise TypeError(f"analyzer name {cls.name!r} is already registered by {existing}")
    _ANALYZERS[cls.name] = cls
    Result.classes[cls.name] = cls.result_class
    return cls


def load_plugins() -> None:
    """Import every declared plug-in (see :mod:`workbench.core.plugins`)."""
    plugins.load_all()


def _register_entry_point(ep_name: str, obj: Any) -> None:
    """An analyzer entry point names its class (``name = "package.module:Class"``); the entry-point
    name must equal ``cls.name`` so that the CLI, the app and the registry agree on one name."""
    if not (isinstance(obj, type) and issubclass(obj, Analyzer)):
        raise TypeError(f"entry point {ep_name!r} must name an Analyzer subclass (package.module:Class), "
                        f"got {obj!r}")
    if obj.name != ep_name:
        raise TypeError(f"entry point {ep_name!r} names analyzer {obj.name!r}: the two names must be equal")
    if _ANALYZERS.get(obj.name) is not obj:
        register_analyzer(obj)


plugins.on_load("workbench.analyzers", _register_entry_point)


def get_analyzer(name: str) -> type[Analyzer]:
    if name not in _ANALYZERS:  # the named entry point alone: `workbench run X` imports analyzer X only
        plugins.load("workbench.analyzers", name)
    if name not in _ANALYZERS:  # registered under another entry-point name, or unknown: everything
        load_plugins()
    try:
        return _ANALYZERS[name]
    except KeyError:
        failed = {k.split(":", 1)[1]: v for k, v in plugins.ERRORS.items() if k.startswith("workbench.analyzers:")}
        if name in failed:  # the recorded real cause (e.g. torch failed to map a library), not "unknown"
            raise UnknownIdError(f"analyzer {name!r} failed to load: {failed[name][:300]}",
                                 "fix the cause above (memory limit, broken install) and run again") from None
        broken = f"; {len(failed)} failed to load, e.g. {next(iter(failed))}: {next(iter(failed.values()))[:200]}" \
            if failed else ""
        raise UnknownIdError(f"no analyzer named {name!r}",
                             f"known: {', '.join(sorted(_ANALYZERS)) or 'none'}{broken}") from None


def list_analyzers() -> list[type[Analyzer]]:
    load_plugins()
    return [_ANALYZERS[k] for k in sorted(_ANALYZERS)]
