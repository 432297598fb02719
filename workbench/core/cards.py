"""Model card contract and the one registry of zoo models.

A card describes a model completely: id ``family.tag``, kind, how to build the
architecture, where its weights come from (and their sha256), the data set, the
preprocessing, class names, layers of interest, licence and citation. The ``models``
package registers cards through the ``workbench.models`` entry-point group; the runtime
only ever sees cards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.core import plugins
from workbench.core.errors import UnknownIdError

WEIGHT_SOURCES = ("package", "zoo", "random", "user", "torch_cache")
TASKS = ("classification", "image2image")
_ID = re.compile(r"^[a-z0-9_]+\.[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class ModelCard:
    """Everything the workbench knows about one zoo model.

    ``input_shape``: (C, H, W) for image2d, (C, T) for signals, as the model takes it.
    ``preprocess(sample) -> np.ndarray`` float32 of ``input_shape``;
    ``display(sample) -> np.ndarray`` float32 in [0, 1], (H, W, 3) at the model's input size
    for images, (C, T) for signals. ``loader(card) -> nn.Module`` builds and loads weights,
    verifying sha256; ``status(card) -> dict`` says whether the weights are available.
    ``extra["training_data"](split) -> (x, y)`` (split "train" | "test"; x float32 model-ready
    (N, *input_shape), y int64 (N,)) is present on cards whose data set is built in, for analyzers
    that train, fine-tune or need a labelled reference set.
    """

    id: str
    kind: str
    title: str
    architecture: str
    input_shape: tuple
    build: Callable[[], Any]
    loader: Callable[[ModelCard], Any]
    status: Callable[[ModelCard], dict]
    preprocess: Callable[[Any], Any]
    display: Callable[[Any], Any]
    weights_source: str
    dataset: str
    class_names: tuple[str, ...]
    default_data: str
    description: str = ""
    trained: bool = True
    sha256: str = ""
    recipe: str = ""
    seed: int = 0
    layers_of_interest: tuple[str, ...] = ()
    sampling_rate: float | None = None
    licence: str = ""
    citation: str = ""
    extra: dict = field(default_factory=dict)
    #: what the model computes: "classification" (logits) or "image2image" (an image of the same
    #: kind, e.g. super-resolution or denoising); analyzers declare the tasks they handle
    task: str = "classification"

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"card id {self.id!r} is not family.tag")
        if self.weights_source not in WEIGHT_SOURCES:
            raise ValueError(f"{self.id}: weights_source must be one of {WEIGHT_SOURCES}")
        if self.task not in TASKS:
            raise ValueError(f"{self.id}: task must be one of {TASKS}")

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    def summary(self) -> dict:
        """JSON-ready description with the live weights status (sha256, availability)."""
        st = self.status(self)
        return {"id": self.id, "kind": self.kind, "title": self.title,
                "architecture": self.architecture, "dataset": self.dataset,
                "weights_source": self.weights_source, "trained": self.trained,
                "sha256": st.get("sha256", self.sha256), "available": st.get("available", False),
                "params": st.get("params"), "accuracy": st.get("accuracy"),
                "input_shape": list(self.input_shape), "classes": len(self.class_names),
                "default_data": self.default_data, "description": self.description,
                "layers_of_interest": list(self.layers_of_interest),
                "licence": self.licence, "citation": self.citation, "note": st.get("note", ""),
                "task": self.task}


_CARDS: dict[str, ModelCard] = {}
#: family -> function(tag) -> ModelCard, for ids resolved on demand (e.g. ``torchvision.resnet50``)
_FACTORIES: dict[str, Callable[[str], ModelCard]] = {}


def register_card_factory(family: str, make: Callable[[str], ModelCard | None]) -> None:
    """Resolve ids ``<family>.<tag>`` on first use; ``make(tag)`` returns a card or None (unknown)."""
    _FACTORIES[family] = make


def register_card(card: ModelCard, *, replace: bool = False) -> ModelCard:
    if card.id in _CARDS and not replace:
        raise ValueError(f"model card {card.id!r} is already registered")
    _CARDS[card.id] = card
    return card


def get_card(model_id: str) -> ModelCard:
    plugins.load("workbench.models")
    if model_id not in _CARDS:
        family, _, tag = (model_id or "").partition(".")
        card = _FACTORIES[family](tag) if family in _FACTORIES and tag else None
        if card is None:
            raise UnknownIdError(f"no zoo model {model_id!r}", "run `workbench zoo list` for the ids")
        _CARDS.setdefault(card.id, card)
    return _CARDS[model_id]


def list_cards() -> list[ModelCard]:
    plugins.load("workbench.models")
    return [_CARDS[k] for k in sorted(_CARDS)]
