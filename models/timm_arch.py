"""On-demand cards ``timm.<name>`` for every timm image model (``timm.list_models()``).

Architectures only: ``timm.create_model(name, pretrained=False)`` under ``torch.manual_seed(0)``, so nothing is
ever downloaded; trained weights come from the user (``workbench zoo add timm.<name> W.safetensors``, validated
by workbench.io.weights). Preprocessing follows the model's own ``pretrained_cfg``: input size, crop
percentage and mean/std. Resolved on first use through the card factory; importing this module imports
neither timm nor torch. Without timm installed the family simply resolves nothing.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from models import preprocess as pp
from models.imagenet_classes import IMAGENET_CLASSES
from workbench.core.cards import ModelCard, register_card_factory

FAMILY = "timm"
SEED = 0
CITATION = "Wightman, R. (2019). PyTorch Image Models. https://github.com/huggingface/pytorch-image-models"


@functools.lru_cache(maxsize=1)
def architecture_names() -> frozenset[str]:
    try:
        import timm
    except ImportError:
        return frozenset()
    return frozenset(timm.list_models())


@functools.lru_cache(maxsize=64)
def _cfg(name: str) -> dict:
    """input_size (C, H, W), crop_pct, mean, std, num_classes of the architecture (no weights loaded)."""
    import timm

    cfg = timm.get_pretrained_cfg(name) or timm.models.get_pretrained_cfg(name)
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})
    return {"input_size": tuple(d.get("input_size") or (3, 224, 224)), "crop_pct": float(d.get("crop_pct") or 0.875),
            "mean": tuple(d.get("mean") or pp.IMAGENET_MEAN), "std": tuple(d.get("std") or pp.IMAGENET_STD),
            "num_classes": int(d.get("num_classes") or 1000)}


def build(name: str):
    """The architecture with seeded random weights (the caller's RNG stream left alone); never downloads."""
    import timm
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return timm.create_model(name, pretrained=False)


def _load(card: ModelCard):
    module = card.build()
    for m in module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False  # hooks must see their inputs intact
    return module.float().eval()


def _status(card: ModelCard) -> dict:
    return {"available": True, "sha256": "", "params": None, "accuracy": None, "trained": False,
            "source": "random", "note": "untrained: architecture only (timm, pretrained=False)"}


def _crop(sample, cfg: dict) -> np.ndarray:
    side = cfg["input_size"][1]
    return pp.resize_center_crop(pp._require(sample, "image", "this timm model"),
                                 int(math.floor(side / cfg["crop_pct"])), side)


def preprocess(sample, name: str) -> np.ndarray:
    """Image sample -> (3, H, W) float32: shorter side H / crop_pct, centre crop H, the model's mean/std."""
    cfg = _cfg(name)
    out = (_crop(sample, cfg) - np.array(cfg["mean"], np.float32)) / np.array(cfg["std"], np.float32)
    return out.transpose(2, 0, 1).astype(np.float32)


def display(sample, name: str) -> np.ndarray:
    return _crop(sample, _cfg(name))


def make(tag: str) -> ModelCard | None:
    """The card of ``timm.<tag>``, or None when timm (or the name) is missing."""
    if tag not in architecture_names():
        return None
    cfg = _cfg(tag)
    if cfg["input_size"][0] != 3:
        return None  # the picture preprocessing here is RGB only
    classes = IMAGENET_CLASSES if cfg["num_classes"] == 1000 else tuple(str(i) for i in range(cfg["num_classes"]))
    return ModelCard(
        id=f"{FAMILY}.{tag}", kind="image2d", title=f"{tag} (timm architecture, untrained)", architecture=tag,
        input_shape=tuple(cfg["input_size"]), build=functools.partial(build, tag), loader=_load, status=_status,
        preprocess=functools.partial(preprocess, name=tag), display=functools.partial(display, name=tag),
        weights_source="random", dataset="imagenet (architecture only)", class_names=classes,
        default_data="skimage:chelsea", trained=False, seed=SEED,
        description=f"timm's {tag} with seeded random weights (pretrained=False: nothing downloaded); add your "
                    "own safetensors with `workbench zoo add`.",
        recipe=f"seeded random initialisation (torch.manual_seed({SEED}), timm defaults)",
        licence="Apache-2.0 (timm architecture)", citation=CITATION, extra={"timm": tag})


register_card_factory(FAMILY, make)
