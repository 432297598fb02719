"""On-demand cards ``torchvision.<name>`` for every torchvision classification architecture.

Structure needs no weights: these cards build the architecture with seeded random weights
(``weights=None``, ``torch.manual_seed(0)``) and never download anything. They are resolved on
first use through :func:`workbench.core.cards.register_card_factory`; importing this module imports
no torch. Preprocessing is the zoo's ImageNet one (shorter side 256, centre crop 224, ImageNet
mean/std), so a result on ``torchvision.resnet50`` and on the zoo's ``resnet50.untrained`` differ
only in their random weights.
"""

from __future__ import annotations

import functools
import warnings

from models import preprocess as pp
from models.imagenet_classes import IMAGENET_CLASSES
from workbench.core.cards import ModelCard, register_card_factory

FAMILY = "torchvision"
SEED = 0
INPUT_SHAPE = (3, 224, 224)
DEFAULT_DATA = "skimage:chelsea"
CITATION = ("TorchVision maintainers and contributors (2016). TorchVision: PyTorch's Computer Vision "
            "library. https://github.com/pytorch/vision")
HEADS = ("avgpool", "fc", "classifier", "head", "heads", "dropout", "flatten", "norm", "permute", "pool",
         "global_pool", "aux1", "aux2", "AuxLogits")


@functools.lru_cache(maxsize=1)
def architecture_names() -> tuple[str, ...]:
    """Every torchvision classification architecture name (resnet50, vgg16, vit_b_16, ...)."""
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def build(name: str):
    """The architecture with seeded random weights (the caller's RNG stream is left untouched)."""
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet/inception init notices
        torch.manual_seed(SEED)
        return torchvision.models.get_model(name, weights=None)


def _load(card: ModelCard):
    """build() in eval mode, float32, in-place activations off (hooks must see their inputs intact)."""
    module = card.build()
    for m in module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return module.float().eval()


@functools.lru_cache(maxsize=64)
def _skeleton(name: str):
    """The architecture on the meta device (shapes only), or None where it cannot be built there."""
    import torch
    import torchvision

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torchvision.models.get_model(name, weights=None)
    except (NotImplementedError, RuntimeError):  # regnets compute widths with real tensors
        return None


@functools.lru_cache(maxsize=64)
def _params(name: str) -> int | None:
    """Parameter count from the meta-device skeleton; None where the architecture cannot be built
    there (never a full CPU build just to count: regnet_y_128gf would take gigabytes)."""
    module = _skeleton(name)
    return None if module is None else int(sum(p.numel() for p in module.parameters()))


def _status(card: ModelCard) -> dict:
    return {"available": True, "sha256": "", "params": _params(card.architecture), "accuracy": None,
            "trained": False, "source": "random", "note": "untrained: architecture only"}


def layers_of_interest(name: str) -> tuple[str, ...]:
    """Late spatial stages first: layer4..1 for ResNets, features (+ its last blocks), else the
    top-level children before the classifier head."""
    module = _skeleton(name)
    if module is None:
        return ("trunk_output", "trunk_output.block4", "trunk_output.block3") if name.startswith("regnet") else ()
    children = [n for n, _ in module.named_children()]
    stages = tuple(f"layer{i}" for i in (4, 3, 2, 1) if f"layer{i}" in children)
    if stages:
        return stages
    if "features" in children:
        inner = [n for n, _ in module.features.named_children()]
        return ("features",) + tuple(f"features.{n}" for n in inner[-4:-1][::-1])
    body = [n for n in children if n not in HEADS]
    return tuple(body[-4:][::-1])


def make(tag: str) -> ModelCard | None:
    """The card of ``torchvision.<tag>``, or None when torchvision has no such classifier."""
    if tag not in architecture_names():
        return None
    return ModelCard(
        id=f"{FAMILY}.{tag}", kind="image2d", title=f"{tag} (torchvision architecture, untrained)",
        architecture=tag, input_shape=INPUT_SHAPE, build=functools.partial(build, tag), loader=_load,
        status=_status, preprocess=pp.imagenet_preprocess, display=pp.imagenet_display,
        weights_source="random", dataset="imagenet (architecture only)", class_names=IMAGENET_CLASSES,
        default_data=DEFAULT_DATA, trained=False, seed=SEED,
        description=f"torchvision's {tag} with seeded random weights (nothing downloaded): for structure "
                    "(receptive fields, shapes), not for predictions.",
        recipe=f"seeded random initialisation (torch.manual_seed({SEED}), torchvision defaults)",
        layers_of_interest=layers_of_interest(tag), licence="BSD-3-Clause (torchvision architecture)",
        citation=CITATION, extra={"torchvision": tag})


register_card_factory(FAMILY, make)
