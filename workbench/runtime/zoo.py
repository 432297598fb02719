"""User weights for zoo architectures: a validated safetensors upload becomes a new card.

The upload is checked by ``workbench.io.weights`` (keys, shapes, dtypes, sizes), stored
as ``<home>/user_weights/<family>.user_<sha8>.safetensors`` with a small JSON note, and
registered as a card ``<family>.user_<sha8>`` that loads it back (sha256 verified).
``<home>`` is ``$WORKBENCH_HOME`` or ``~/.cache/workbench``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path

from workbench.core.cards import ModelCard, get_card, list_cards, register_card
from workbench.core.errors import ConfigError, WeightsError, WorkbenchError
from workbench.core.result import ModelArtifact
from workbench.io import limits
from workbench.io.safe import read_file
from workbench.io.weights import load_user_safetensors, read_safetensors_file

log = logging.getLogger(__name__)


def home() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME") or Path.home() / ".cache" / "workbench")


def _user_dir() -> Path:
    d = home() / "user_weights"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _user_card(base: ModelCard, path: Path, sha: str, label: str) -> ModelCard:
    def loader(card: ModelCard):
        import torch

        data = read_safetensors_file(path, nofollow=True)  # hash and parse the very same bytes
        if hashlib.sha256(data).hexdigest() != sha:
            raise WeightsError(f"{path.name} changed on disk since it was uploaded", "upload it again")
        module = base.build()
        sd = load_user_safetensors(data, module.state_dict())
        module.load_state_dict(sd, strict=True)
        return module.to(torch.float32).eval()

    def status(card: ModelCard) -> dict:
        st = dict(base.status(base))
        st.update(available=path.exists(), sha256=sha, accuracy=None,
                  note=f"user weights '{label}' for {base.architecture}")
        return st

    return dataclasses.replace(
        base, id=f"{base.family}.user_{sha[:8]}", title=f"{base.architecture} · user weights '{label}'",
        weights_source="user", trained=True, sha256=sha, loader=loader, status=status,
        description=f"{base.architecture} with weights uploaded by the user ({label}).", recipe="")


def add_user_weights(base_id: str, data: bytes, label: str = "upload") -> str:
    """Validate ``data`` against ``base_id``'s architecture, store it, register a card; return its id."""
    base = get_card(base_id)
    if base.weights_source == "user":
        raise ConfigError("pick a zoo architecture, not a user card, as the base")
    label = clean_label(label, "upload")
    load_user_safetensors(data, base.build().state_dict())  # raises a one-line WeightsError
    sha = hashlib.sha256(data).hexdigest()
    path = _user_dir() / f"{base.family}.user_{sha[:8]}.safetensors"
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps({"base": base_id, "sha256": sha, "label": label}))
    card = _user_card(base, path, sha, label)
    register_card(card, replace=True)
    return card.id


class UserCards(list):
    """The ids of the user cards registered (a list of str), with ``skipped``: one line per stored upload
    that could not be registered ("<file>: <reason>"), for the app and the CLI to show."""

    def __init__(self, ids=(), skipped=()) -> None:
        super().__init__(ids)
        self.skipped: list[str] = list(skipped)


def _why(e: Exception) -> str:
    if isinstance(e, WorkbenchError):
        return e.one_line()
    if isinstance(e, KeyError):
        return f"the note lacks the field {e}"
    if isinstance(e, json.JSONDecodeError):
        return "the note is not valid JSON"
    first = (str(e).strip().splitlines() or [""])[0][:120]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def clean_label(label: str, default: str, extra: str = "") -> str:
    """A label as shown in `zoo list` and the app: letters, digits, ``_.- `` (and ``extra``), 60 at most.
    Applied when a label is stored AND when a stored note is read back (the note may be hand-edited)."""
    return re.sub(rf"[^A-Za-z0-9_.\- {re.escape(extra)}]", "_", str(label))[:60] or default


_SHA = re.compile(r"^[0-9a-f]{64}$")


def _user_card_from_note(note: Path) -> ModelCard:
    raw = read_file(note, limits.MAX_NOTE_BYTES, what="user weights note", nofollow=True, error=WeightsError)
    meta = json.loads(raw)
    if not isinstance(meta, dict):
        raise WeightsError("the note is not a JSON object", "upload the weights again")
    for field, ok in (("base", isinstance(meta.get("base"), str)), ("sha256", _SHA.match(str(meta.get("sha256"))))):
        if not ok:
            raise WeightsError(f"the note's field {field!r} is missing or malformed", "upload the weights again")
    weights = note.with_suffix(".safetensors")
    if not weights.exists():
        raise WeightsError(f"{weights.name} is missing", "upload the weights again")
    base = get_card(meta["base"])
    pruned = meta.get("pruned") is True
    label = clean_label(meta.get("label", ""), "pruned" if pruned else "upload", "%" if pruned else "")
    return (_pruned_card if pruned else _user_card)(base, weights, meta["sha256"], label)


def load_user_cards() -> UserCards:
    """Register every stored user upload (called once at start-up by the app and CLI). An upload that
    cannot be registered is skipped, never silently: it is listed in ``.skipped`` and logged as a warning."""
    list_cards()
    out = UserCards()
    d = home() / "user_weights"
    for note in sorted(d.glob("*.json")) if d.exists() else []:
        try:
            card = _user_card_from_note(note)
        except Exception as e:  # noqa: BLE001 - any bad upload is skipped, with its reason
            line = f"user weights {note.stem}: skipped ({_why(e)})"
            out.skipped.append(line)
            log.warning(line)
            continue
        register_card(card, replace=True)
        out.append(card.id)
    return out


# ---- pruned models (structural pruning changes layer sizes) -------------------------------------

def resized(base: ModelCard, shapes: dict[str, list[int]]):
    """``base``'s architecture with every Conv / Linear / BatchNorm re-created at the sizes in ``shapes``
    (state-dict key -> tensor shape, e.g. read from a safetensors header); weights uninitialized.
    Raises WeightsError when any other parameter's shape differs (only those layers can be resized)."""
    import torch
    from torch import nn

    module = base.build()
    for name, m in module.named_modules():
        weight, w = getattr(m, "weight", None), shapes.get(f"{name}.weight" if name else "weight")
        if not isinstance(weight, torch.Tensor) or w is None or list(weight.shape) == list(w):
            continue
        out = int(w[0])
        if isinstance(m, nn.Linear) and len(w) == 2:
            m.weight, m.out_features, m.in_features = nn.Parameter(torch.empty(w)), out, int(w[1])
        elif isinstance(m, nn.modules.conv._ConvNd) and not m.transposed and len(w) == m.weight.dim():
            m.weight, m.out_channels, m.in_channels = nn.Parameter(torch.empty(w)), out, int(w[1]) * m.groups
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and len(w) == 1:
            m.weight, m.num_features = nn.Parameter(torch.empty(out)), out
            if m.track_running_stats:
                m.running_mean, m.running_var = torch.zeros(out), torch.ones(out)
        else:
            raise WeightsError(f"layer {name!r} of {base.architecture} cannot take shape {list(w)}",
                               "only conv, linear and BatchNorm layers can change size")
        if getattr(m, "bias", None) is not None:
            m.bias = nn.Parameter(torch.empty(out))
    return module


def _header_shapes(data: bytes) -> dict[str, list[int]]:
    from workbench.io.weights import read_safetensors_header

    return {k: list(v.get("shape", [])) for k, v in read_safetensors_header(data).items() if isinstance(v, dict)}


def _pruned_card(base: ModelCard, path: Path, sha: str, label: str) -> ModelCard:
    def build():
        return resized(base, _header_shapes(read_safetensors_file(path, nofollow=True)))

    def loader(card: ModelCard):
        import torch

        data = read_safetensors_file(path, nofollow=True)
        if hashlib.sha256(data).hexdigest() != sha:
            raise WeightsError(f"{path.name} changed on disk since it was saved", "prune and save it again")
        module = resized(base, _header_shapes(data))
        module.load_state_dict(load_user_safetensors(data, module.state_dict()), strict=True)
        return module.to(torch.float32).eval()

    def status(card: ModelCard) -> dict:
        st = dict(base.status(base))
        params, ok = None, path.exists()
        try:
            shapes = _header_shapes(read_safetensors_file(path, nofollow=True)) if ok else {}
        except WorkbenchError:  # replaced by something unreadable since it was saved: listed, not loadable
            shapes, ok = {}, False
        if shapes:
            params = sum(math.prod(s) for k, s in shapes.items()
                         if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        st.update(available=ok, sha256=sha, accuracy=None, params=params,
                  note=f"pruned {base.id} '{label}' (smaller layers, same architecture)")
        return st

    return dataclasses.replace(
        base, id=f"{base.family}.pruned_{sha[:8]}", title=f"{base.title} · pruned '{label}'", build=build,
        weights_source="user", trained=True, sha256=sha, loader=loader, status=status, recipe="",
        description=f"{base.id} after structural pruning ({label}): its conv/linear layers are narrower.",
        extra={**base.extra, "pruned_from": base.id})


def add_pruned_weights(base_id: str, state_dict: dict, label: str = "pruned") -> str:
    """Store a pruned ``state_dict`` (name -> array or tensor, layer sizes may differ from ``base_id``'s)
    as safetensors in ``<home>/user_weights`` with a JSON note, and register a card
    ``<family>.pruned_<sha8>`` that rebuilds the base architecture at the stored sizes; return its id."""
    import numpy as np
    import torch
    from safetensors.torch import save

    base = get_card(base_id)
    if base.weights_source == "user":
        raise ConfigError("pick a zoo architecture, not a user card, as the base")
    label = clean_label(label, "pruned", "%")
    tensors = {k: torch.as_tensor(np.array(v, copy=True)).contiguous() for k, v in state_dict.items()}
    data = save(tensors, metadata={"workbench": f"pruned {base_id}"})
    module = resized(base, _header_shapes(data))
    load_user_safetensors(data, module.state_dict())  # keys, shapes, dtypes, finiteness: one-line errors
    sha = hashlib.sha256(data).hexdigest()
    path = _user_dir() / f"{base.family}.pruned_{sha[:8]}.safetensors"
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps({"base": base_id, "sha256": sha, "label": label, "pruned": True}))
    card = _pruned_card(base, path, sha, label)
    register_card(card, replace=True)
    return card.id


def add_model_artifact(artifact: ModelArtifact, label: str = "") -> str:
    """Save the model a result carries (:meth:`Result.model_artifact`) as a zoo card; return its id.
    The analyzer is never named: any result that declares an artifact works."""
    return add_pruned_weights(artifact.base_model, artifact.state_dict, label or artifact.label)
