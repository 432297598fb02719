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
import os
import re
from pathlib import Path

from workbench.core.cards import ModelCard, get_card, list_cards, register_card
from workbench.core.errors import ConfigError, WeightsError
from workbench.io.weights import load_user_safetensors, sha256_file


def home() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME") or Path.home() / ".cache" / "workbench")


def _user_dir() -> Path:
    d = home() / "user_weights"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _user_card(base: ModelCard, path: Path, sha: str, label: str) -> ModelCard:
    def loader(card: ModelCard):
        import torch

        if sha256_file(path) != sha:
            raise WeightsError(f"{path.name} changed on disk since it was uploaded", "upload it again")
        module = base.build()
        sd = load_user_safetensors(path.read_bytes(), module.state_dict())
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
    label = re.sub(r"[^A-Za-z0-9_.\- ]", "_", label)[:60] or "upload"
    load_user_safetensors(data, base.build().state_dict())  # raises a one-line WeightsError
    sha = hashlib.sha256(data).hexdigest()
    path = _user_dir() / f"{base.family}.user_{sha[:8]}.safetensors"
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps({"base": base_id, "sha256": sha, "label": label}))
    card = _user_card(base, path, sha, label)
    register_card(card, replace=True)
    return card.id


def load_user_cards() -> list[str]:
    """Register every stored user upload (called once at start-up by the app and CLI)."""
    list_cards()
    ids = []
    d = home() / "user_weights"
    for note in sorted(d.glob("*.json")) if d.exists() else []:
        try:
            meta = json.loads(note.read_text())
            base = get_card(meta["base"])
            card = _user_card(base, note.with_suffix(".safetensors"), meta["sha256"], meta.get("label", ""))
        except (OSError, ValueError, KeyError, Exception):  # noqa: BLE001 - a bad note is skipped
            continue
        register_card(card, replace=True)
        ids.append(card.id)
    return ids
