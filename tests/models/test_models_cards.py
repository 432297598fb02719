"""Every zoo card is self-consistent: ids, kinds, shapes, class names, layers, default data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import models.zoo as zoo
from workbench.core.analyzer import KINDS
from workbench.core.cards import get_card, list_cards
from workbench.data.builtin import _digits, _mnist1d
from workbench.data.registry import get_samples

EXPECTED = {"efficientnet_lite0.imagenet", "digits_vgg.sk", "digits_resnet.sk", "mnist1d_cnn.default",
            "resnet18.untrained", "resnet50.untrained", "vgg16.untrained", "alexnet.untrained"}
CARDS = {c.id: c for c in zoo.CARDS}


def test_every_card_is_registered():
    assert EXPECTED <= set(CARDS)  # the foundation's cards; analyzers' issues add more
    assert EXPECTED <= {c.id for c in list_cards()}
    for card_id in EXPECTED:
        assert get_card(card_id) is CARDS[card_id]


def test_importing_the_zoo_builds_nothing_and_imports_no_torch():
    code = "import sys, models.zoo; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("card_id", sorted(EXPECTED))
def test_card_builds_and_maps_input_shape_to_class_logits(card_id):
    card = CARDS[card_id]
    assert card.kind in KINDS and card.family == card_id.split(".")[0]
    assert len(card.input_shape) == (3 if card.kind == "image2d" else 2)
    assert card.description and card.citation and card.licence and card.recipe
    model = card.build().eval()
    assert type(model).__name__ == card.architecture
    with torch.no_grad():
        out = model(torch.zeros(2, *card.input_shape))
    assert tuple(out.shape) == (2, len(card.class_names))
    modules = dict(model.named_modules())
    assert card.layers_of_interest and all(name in modules for name in card.layers_of_interest)


def test_untrained_cards_say_so():
    for card in CARDS.values():
        if card.weights_source == "random":
            assert not card.trained and "untrained" in card.title
            assert card.dataset == "imagenet (architecture only)"


def test_imagenet_class_names_match_torchvision():
    import torchvision

    names = tuple(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    for card in CARDS.values():
        if "imagenet" in card.dataset:
            assert card.class_names == names
    assert CARDS["digits_vgg.sk"].class_names == tuple("0123456789")


@pytest.mark.parametrize("card_id", sorted(EXPECTED))
def test_default_data_preprocesses_to_input_shape(card_id):
    card = CARDS[card_id]
    sample = get_samples(card.default_data)[0]
    x = card.preprocess(sample)
    assert x.dtype == np.float32 and x.shape == tuple(card.input_shape) and np.isfinite(x).all()
    shown = card.display(sample)
    assert shown.dtype == np.float32
    if card.kind == "image2d":
        assert shown.shape == (*card.input_shape[1:], 3)
        assert shown.min() >= 0.0 and shown.max() <= 1.0
    else:
        assert shown.shape == tuple(card.input_shape)


def test_default_data_is_the_first_test_sample():
    assert CARDS["digits_vgg.sk"].default_data == f"digits:{_digits()['test'][0]}"
    assert CARDS["mnist1d_cnn.default"].default_data == f"mnist1d:{_mnist1d()['test'][0]}"


def test_summary_is_json_ready_and_reports_status():
    for card in CARDS.values():
        summary = card.summary()
        json.dumps(summary)
        assert summary["params"] > 0 and isinstance(summary["available"], bool) and summary["note"]
    eff = CARDS["efficientnet_lite0.imagenet"].summary()
    assert eff["available"] and eff["params"] == 4652008 and eff["sha256"] == CARDS[
        "efficientnet_lite0.imagenet"].sha256
