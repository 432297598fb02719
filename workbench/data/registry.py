"""The one registry of data sets, and samples addressed by data id.

A data set is a :class:`Dataset` subclass registered with :func:`register_dataset` (or declared by
another package under the entry-point group ``workbench.datasets``, ``name = "package.module:Class"``).
A data id is ``NAME[:SELECTOR]``; the registry finds the class by NAME and asks it to open the rest
(:meth:`Dataset.open`): built-in sets take the selector directly, user sets (``folder:``, ``npz:``,
``edf:``) first read a path. The selector grammar every set shares (:meth:`Dataset.select`):

  ``""``             the set's default selection (its default split)
  ``test``           every sample of a labelled split (``train``, ``test``; ``all`` = the whole set)
  ``test:16``        the first 16 samples of the split;  ``test:0-449``  positions 0..449 of the split
  ``17``, ``3,7``    samples by index in the whole set;  ``0-99``        indices 0..99 (inclusive)
"""

from __future__ import annotations

import re
from typing import ClassVar

from workbench.core import plugins
from workbench.core.errors import DataError, InputTooLargeError, UnknownIdError
from workbench.core.sample import MODEL_KINDS_FOR, SAMPLE_KINDS, Sample

_DATASETS: dict[str, type[Dataset]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")
#: samples one data id may name (user folders and arrays are checked against the io limits as well)
MAX_SELECTED = 20000


class Dataset:
    """Base class of a data set. Subclasses set the class attributes and implement :meth:`items` and
    :meth:`get`; sets with their own id grammar override :meth:`select`.

    ``kind``: the samples' kind ("image", "signal", "vector"); ``model_kinds``: the model kinds
    (``ModelCard.kind``) it suits, by default those of its sample kind; ``splits``: labelled splits
    (e.g. ("train", "test")); ``default_split``: what the bare name selects; ``listed``: offered in
    pickers (False for sets that need a path, e.g. ``folder:``)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    model_kinds: ClassVar[tuple[str, ...]] = ()
    about: ClassVar[str] = ""
    size: ClassVar[int] = 0
    classes: ClassVar[int] = 0
    splits: ClassVar[tuple[str, ...]] = ()
    default_split: ClassVar[str] = ""
    listed: ClassVar[bool] = True

    # -- what a subclass implements ---------------------------------------------------------------
    def items(self, split: str = "") -> list[str]:
        """Every sample id of ``split`` ("" or "all": the whole set), in a fixed order."""
        raise NotImplementedError

    def get(self, sample_id: str) -> Sample:
        """One sample by its id (as listed by :meth:`items`)."""
        raise NotImplementedError

    # -- shared behaviour ---------------------------------------------------------------------------
    @classmethod
    def open(cls, rest: str, expect: str = "") -> tuple[Dataset, str]:
        """The data set an id names and the selector left over; built-in sets take ``rest`` whole.
        ``expect``: the sample kind the caller's model takes ("" unknown), for sets that cannot tell."""
        return cls(), rest

    @classmethod
    def suits(cls) -> tuple[str, ...]:
        return cls.model_kinds or MODEL_KINDS_FOR.get(cls.kind, ())

    def load(self, ids: list[str]) -> list[Sample]:
        """Samples for ids from :meth:`select` (subclasses may read many at once)."""
        return [self.get(i) for i in ids]

    def select(self, selector: str) -> list[str]:
        """Sample ids named by ``selector`` (see the module docstring); DataError when it names none."""
        sel = selector.strip()
        head, _, tail = sel.partition(":")
        if sel == "":
            return self.items(self.default_split)
        if head in (*self.splits, "all"):
            ids = self.items("" if head == "all" else head)
            return _pick(ids, tail, f"{self.name}:{head}", head=True) if tail else ids
        return _pick(self.items(""), sel, self.name, head=False)

    def preview(self, limit: int = 24) -> list[str]:
        """A few single-sample ids for pickers."""
        return self.items(self.default_split)[:limit]

    def set_ids(self) -> list[str]:
        """Many-sample ids for data-set runs: every labelled split (e.g. ``digits:test``)."""
        return [f"{self.name}:{s}" for s in self.splits]

    @classmethod
    def describe(cls) -> dict:
        return {"name": cls.name, "kind": cls.kind, "model_kinds": list(cls.suits()), "size": cls.size,
                "classes": cls.classes, "splits": list(cls.splits), "about": cls.about}


def _pick(ids: list[str], spec: str, where: str, *, head: bool) -> list[str]:
    """ids[...] by ``N`` (the first N when ``head``, else index N), ``a-b`` (inclusive) or ``i,j,k``."""
    n = len(ids)
    m = _RANGE.match(spec)
    try:
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise DataError(f"{where}:{spec} is an empty range",
                                f"write start-end with start <= end, e.g. 0-{n - 1}")
            idx = list(range(a, b + 1))
        elif head and spec.isdigit():
            if int(spec) == 0:  # split:N is "the first N", so split:0 reads like index 0 but selects nothing
                raise DataError(f"{where}:{spec} selects no samples ({where}:N is the first N samples)",
                                f"e.g. {where}:1 for the first sample, {where}:0-0 for index 0")
            idx = list(range(min(int(spec), n)))
        else:
            idx = [int(p) for p in spec.split(",")]
    except ValueError:
        raise DataError(f"data id {where}:{spec!r} is not an index, a range a-b, a list or split:N",
                        f"e.g. {where}:0, {where}:0-9 or {where}:3,7") from None
    if not idx or any(i < 0 or i >= n for i in idx):
        raise DataError(f"{where} index out of range in {spec!r} (0..{n - 1})")
    if len(idx) > MAX_SELECTED:
        raise InputTooLargeError(f"{where}:{spec} names {len(idx)} samples, over the {MAX_SELECTED} limit",
                                 "select a range")
    return [ids[i] for i in idx]


# -- the registry -------------------------------------------------------------------------------------

def _check_definition(cls: type[Dataset]) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        raise TypeError(f"{cls!r} is not a Dataset subclass")
    if not _NAME.match(cls.name or ""):
        raise TypeError(f"data set name {cls.name!r} is not lower-case (letters, digits, '_' and '.')")
    if cls.kind not in SAMPLE_KINDS:
        raise TypeError(f"data set {cls.name}: kind must be one of {SAMPLE_KINDS}, not {cls.kind!r}")


def register_dataset(cls: type[Dataset]) -> type[Dataset]:
    """Class decorator: validate the definition and add the data set under ``cls.name``."""
    _check_definition(cls)
    existing = _DATASETS.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise TypeError(f"data set name {cls.name!r} is already registered by {existing}")
    _DATASETS[cls.name] = cls
    return cls


def _register_entry_point(ep_name: str, obj) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Dataset)):
        raise TypeError(f"entry point {ep_name!r} must name a Dataset subclass (package.module:Class), got {obj!r}")
    if obj.name != ep_name:
        raise TypeError(f"entry point {ep_name!r} names data set {obj.name!r}: the two names must be equal")
    if _DATASETS.get(obj.name) is not obj:
        register_dataset(obj)


plugins.on_load("workbench.datasets", _register_entry_point)


def get_dataset(name: str) -> type[Dataset]:
    if name not in _DATASETS:
        plugins.load("workbench.datasets")
    try:
        return _DATASETS[name]
    except KeyError:
        raise UnknownIdError(f"no data set {name!r}", f"known: {', '.join(sorted(_DATASETS))}") from None


def all_datasets() -> list[type[Dataset]]:
    plugins.load("workbench.datasets")
    return [_DATASETS[k] for k in sorted(_DATASETS)]


def datasets_for(model_kind: str, input_shape: tuple | None = None) -> list[str]:
    """Names of the listed data sets whose samples a model of ``model_kind`` takes (for pickers); given the model's
    ``input_shape``, a set made for one input shape only (``input_shape`` on the set, e.g. emotiv.ica) must match."""
    return [d.name for d in all_datasets() if d.listed and model_kind in d.suits() and (
        input_shape is None or getattr(d, "input_shape", None) in (None, tuple(input_shape)))]


def list_datasets() -> list[dict]:
    return [d.describe() for d in all_datasets() if d.listed]


def list_items(name: str, limit: int = 24) -> list[str]:
    """A few single-sample ids of a data set, for pickers."""
    return get_dataset(name)().preview(limit)


def list_sets(name: str) -> list[str]:
    """Many-sample ids of a data set (its labelled splits), for data-set runs."""
    return get_dataset(name)().set_ids()


# -- resolving data ids ----------------------------------------------------------------------------------

def resolve(data_id: str, kind: str = "") -> tuple[Dataset, list[str]]:
    """The data set and the sample ids a data id names, without decoding any sample. ``kind``: the sample
    kind the caller expects ("image", "signal", "vector"; "" = any), used where a file cannot tell."""
    from workbench.data.paths import path_id

    data_id = (data_id or "").strip()
    name, _, rest = data_id.partition(":")
    if name not in _DATASETS:
        plugins.load("workbench.datasets")
    if name not in _DATASETS:
        name, _, rest = path_id(data_id).partition(":")  # a bare file or folder path
    ds, selector = get_dataset(name).open(rest, kind)
    return ds, ds.select(selector)


def get_samples(data_id: str, kind: str = "") -> list[Sample]:
    """Resolve a data id (or a path to an image, an EEG file, an array or a folder) to samples.
    Raises a typed error otherwise. ``kind``: as for :func:`resolve`."""
    ds, ids = resolve(data_id, kind)
    return ds.load(ids)


def dataset_arrays(name: str, split: str = "train", **kwargs):
    """Raw arrays of a built-in set that has them (``arrays(split)``): digits (N, 8, 8) in [0, 1],
    mnist1d (N, 40), eeg_synth.drowsy (N, 30, 384) uV, moons / circles (N, 2); labels int64."""
    cls = get_dataset(name)
    if not hasattr(cls, "arrays"):
        raise UnknownIdError(f"no array data set {name!r}",
                             f"use {', '.join(d.name for d in all_datasets() if hasattr(d, 'arrays'))}")
    if split not in ("train", "test", "all"):
        raise DataError(f"split {split!r} is not train, test or all")
    return cls().arrays(split, **kwargs)
