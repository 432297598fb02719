"""Cards ``user.<function>`` for networks built by the user's own Python file.

The file is the user's own trusted code, named on their own command line (``workbench run --model
my_models.py:build_net``, ``workbench app --models my_models.py``), passed here through the environment
variable ``WORKBENCH_USER_MODELS``; it is never taken from an upload. Every public function defined in
the file that takes no required argument is a model builder returning an ``nn.Module`` (or only those
listed in a module-level ``WORKBENCH_MODELS = ["build_net", ...]``). Optional attributes on the function
describe the model; everything else is inferred (see workbench.core.module_card):

    def build_net():
        return MyCNN()
    build_net.input_shape = (1, 8, 8)       # one sample as the model takes it; default (C, 32, 32) / (C, 128)
    build_net.classes = ["zero", "one", ...] # default "0".."K-1"
    build_net.kind = "image2d"              # image2d | signal1d | eeg | vector; default from the first conv layer
    build_net.normalize = ((0.5,), (0.5,))  # (mean, std); default identity on [0, 1] pictures
    build_net.channel_names, build_net.sfreq # EEG
    build_net.default_data = "digits:21"

Weights: seeded random initialisation (``torch.manual_seed(0)`` around the call), or the user's
safetensors (``--weights``; ``WORKBENCH_USER_WEIGHTS="build_net=/path/w.safetensors"``) validated by
workbench.io.weights. Importing this module registers the factory; with the variable set it also
registers every card at once (the app lists them), recording any that fail in the plug-in errors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from workbench.core import plugins
from workbench.core.cards import ModelCard, register_card, register_card_factory
from workbench.core.errors import UnsupportedModelError, WorkbenchError
from workbench.core.module_card import (
    USER_MODELS_ENV,
    USER_WEIGHTS_ENV,
    Hints,
    Source,
    first_layer_kind,
    in_channels,
    module_card,
    probe,
    state_sha256,
    without_inplace,
)

FAMILY = "user"
SEED = 0
_LOADED: dict[tuple[str, float], object] = {}  # (path, mtime) -> the imported file; bounded by the files named
_DEFAULT_DATA = {"image2d": "digits:21", "signal1d": "mnist1d:4000", "eeg": "eeg_synth.drowsy",
                 "vector": "moons:1000"}


def user_files() -> list[Path]:
    return [Path(p).expanduser().resolve() for p in os.environ.get(USER_MODELS_ENV, "").split(os.pathsep) if p]


def user_weights() -> dict[str, Path]:
    out = {}
    for item in os.environ.get(USER_WEIGHTS_ENV, "").split(os.pathsep):
        fn, sep, path = item.partition("=")
        if sep and fn and path:
            out[fn.strip()] = Path(path).expanduser().resolve()
    return out


def load_file(path: Path):
    """Import the user's file (once per modification time) as module ``workbench_user_<sha8>``."""
    from workbench.io import limits
    from workbench.io.safe import check_file

    if path.suffix != ".py":
        raise UnsupportedModelError(f"no Python file {path}", "give --model FILE.py:FUNCTION with an existing file")
    # trusted code, but a FIFO, device or huge file named by mistake must not hang or flood the import
    check_file(path, limits.MAX_USER_CODE_BYTES, what="model file", error=UnsupportedModelError,
               hint="give --model FILE.py:FUNCTION with an existing file")
    key = (str(path), path.stat().st_mtime)
    if key not in _LOADED:
        name = f"workbench_user_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # classes defined there must resolve by name (copies, process pools)
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - the user's file can raise anything on import
            sys.modules.pop(name, None)
            raise UnsupportedModelError(f"{path.name} failed to import ({type(e).__name__}: {_first(e)})",
                                        "run `python FILE.py` to see the full error") from None
        _LOADED[key] = module
    return _LOADED[key]


def _first(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:160]


def builders(module) -> dict:
    """Function name -> function: ``WORKBENCH_MODELS`` when defined, else every public function of the
    file itself (not imported ones) whose parameters all have defaults."""
    listed = getattr(module, "WORKBENCH_MODELS", None)
    out = {}
    for name, fn in vars(module).items():
        if not inspect.isfunction(fn) or name.startswith("_") or fn.__module__ != module.__name__:
            continue
        if listed is not None and name not in listed:
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(fn).parameters.values()):
            out[name] = fn
    return out


def _build(fn, weights: Path | None):
    """Call the user's function under seed SEED (the caller's RNG left alone), check it, load weights."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        try:
            module = fn()
        except Exception as e:  # noqa: BLE001 - the user's code
            raise UnsupportedModelError(f"{fn.__name__}() failed ({type(e).__name__}: {_first(e)})",
                                        "call it in Python to see the full error") from None
    if not isinstance(module, torch.nn.Module):
        raise UnsupportedModelError(f"{fn.__name__}() returned a {type(module).__name__}, not a torch.nn.Module",
                                    "return the network from the function")
    if weights is not None:
        from workbench.io.weights import load_user_safetensors, read_safetensors_file

        data = read_safetensors_file(weights)  # regular file, size checked on the descriptor, bounded read
        module.load_state_dict(load_user_safetensors(data, module.state_dict()), strict=True)
    return without_inplace(module.float().eval())


def _hints(fn) -> Hints:
    g = lambda k, d=None: getattr(fn, k, d)  # noqa: E731
    return Hints(kind=g("kind", ""), input_shape=tuple(g("input_shape", ())), classes=tuple(g("classes", ())),
                 normalize=g("normalize"), channel_names=tuple(g("channel_names", ())), sfreq=g("sfreq"),
                 title=g("title", ""), default_data=g("default_data", ""))


def card_from_function(fn, weights: Path | None = None) -> ModelCard:
    """The card ``user.<fn>``: kind, input shape and classes from the attributes or inferred; one probe
    forward on zeros of the input shape checks the function builds a working network."""
    import torch

    from workbench.io.weights import sha256_file

    module, hints = _build(fn, weights), _hints(fn)
    kind = hints.kind or first_layer_kind(module) or "vector"
    if kind == "signal1d" and hints.channel_names and hints.sfreq:
        kind = "eeg"
    c = in_channels(module) or 1
    shape = hints.input_shape or {"image2d": (c, 32, 32), "vector": (c,)}.get(kind, (c, 128))
    try:
        out_shape, task = probe(module, torch.zeros(1, *shape))
    except WorkbenchError as e:
        raise UnsupportedModelError(f"user.{fn.__name__}: {e.message}",
                                    f"set {fn.__name__}.input_shape = (C, H, W) or (C, T) in your file") from None
    if not hints.default_data:
        dflt = "skimage:chelsea" if kind == "image2d" and shape[0] == 3 else _DEFAULT_DATA.get(kind, "")
        hints = Hints(**{**hints.__dict__, "default_data": dflt})
    sha = sha256_file(weights) if weights is not None else state_sha256(module)
    source = Source(load=lambda: _build(fn, weights), build=fn, sha256=sha,
                    weights_source="user" if weights is not None else "random", seed=SEED)
    card = module_card(f"{FAMILY}.{fn.__name__}", module, source, hints, input_shape=shape, kind=kind,
                       out_shape=out_shape, task=task)
    where = f"{Path(inspect.getfile(fn)).name}:{fn.__name__}"
    return _described(card, where, weights)


def _described(card: ModelCard, where: str, weights: Path | None) -> ModelCard:
    import dataclasses

    state = f"weights {weights.name}" if weights is not None else f"random init (seed {SEED})"
    return dataclasses.replace(card, title=card.title.replace("(your model)", f"({where}, {state})"),
                               trained=weights is not None,
                               recipe=f"built by {where}; {state}")


def make(tag: str) -> ModelCard | None:
    """``user.<tag>``: the function ``tag`` of the first user file defining it (None when none does)."""
    for path in user_files():
        fns = builders(load_file(path))
        if tag in fns:
            return card_from_function(fns[tag], user_weights().get(tag))
    return None


def register_all() -> list[str]:
    """Register a card for every builder of every user file; failures go to the plug-in errors (shown on
    the app's home page and by the CLI), one line each, and never stop the others."""
    ids = []
    for path in user_files():
        try:
            fns = builders(load_file(path))
        except WorkbenchError as e:
            plugins.ERRORS[f"{USER_MODELS_ENV}:{path.name}"] = e.one_line()
            continue
        for name, fn in fns.items():
            try:
                ids.append(register_card(card_from_function(fn, user_weights().get(name)), replace=True).id)
            except WorkbenchError as e:
                plugins.ERRORS[f"{USER_MODELS_ENV}:{path.name}:{name}"] = e.one_line()
    return ids


register_card_factory(FAMILY, make)
if user_files():
    register_all()
