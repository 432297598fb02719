"""The pruning toy: moons / circles data ids, the ToyMLP architecture, its vector cards and their training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models.zoo as zoo
from models import preprocess as pp
from models import train
from models.architectures import ToyMLP
from models.recipes import RECIPES
from workbench.core.analyzer import KINDS
from workbench.core.cards import get_card
from workbench.core.errors import DataError
from workbench.data import dataset_arrays, get_samples, list_items
from workbench.data.registry import list_datasets
from workbench.runtime import make_batch

TOYS = ("toy_mlp.moons", "toy_mlp.circles")


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_toy_sets_are_fixed_balanced_and_addressable(name):
    x, y = dataset_arrays(name, "train")
    xt, yt = dataset_arrays(name, "test")
    assert x.shape == (1000, 2) and xt.shape == (500, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.45 < y.mean() < 0.55 and 0.4 < yt.mean() < 0.6
    assert np.array_equal(dataset_arrays(name, "train")[0], x)  # fixed seed
    if name == "circles":  # factor 0.3: the inner circle sits well inside the outer one
        r = np.linalg.norm(x, axis=1)
        assert r[y == 1].mean() < 0.45 < 0.8 < r[y == 0].mean()
    s = get_samples(f"{name}:test:3")
    assert [q.id for q in s] == [f"{name}:1000", f"{name}:1001", f"{name}:1002"]
    assert all(q.kind == "vector" and q.array.shape == (2,) and q.label in (0, 1) for q in s)
    assert list_items(name, 2) == [f"{name}:1000", f"{name}:1001"]
    assert name in {d["name"] for d in list_datasets()}
    with pytest.raises(DataError):
        get_samples(f"{name}:1500")


def test_toy_mlp_mirrors_the_authors_network():
    m = ToyMLP().eval()
    names = [n for n, _ in m.network.named_children()]
    assert names == ["fc1", "relu1", "dropout", "fc2", "relu2", "fc3", "out"]  # no ReLU after fc3, as published
    assert sum(mod.out_features for mod in (m.network.fc1, m.network.fc2, m.network.fc3)) == 3000
    assert m(torch.zeros(5, 2)).shape == (5, 2)


@pytest.mark.parametrize("card_id", TOYS)
def test_toy_cards_are_vector_cards_with_training_data(card_id):
    card = get_card(card_id)
    assert card in zoo.CARDS and card.kind == "vector" and "vector" in KINDS
    assert card.input_shape == (2,) and len(card.class_names) == 2 and card.citation.startswith("Yeom")
    x = card.preprocess(get_samples(card.default_data)[0])
    assert x.dtype == np.float32 and x.shape == (2,)
    xs, ys = card.extra["training_data"]("test")
    assert xs.shape == (500, 2) and ys.shape == (500,)
    batch = make_batch(card, f"{card.dataset}:test:4", "cpu")
    assert tuple(batch.x.shape) == (4, 2) and batch.display.shape == (4, 2) and len(batch.labels) == 4
    with pytest.raises(DataError):
        make_batch(card, "digits:0", "cpu")
    with pytest.raises(DataError):
        pp.vector_batch(np.zeros((3, 3)))
    assert RECIPES[card_id]["architecture"] == "ToyMLP" and RECIPES[card_id]["dataset"] == card.dataset


@pytest.mark.parametrize("card_id", TOYS)
def test_trained_toy_reaches_its_target(card_id):
    card = get_card(card_id)
    if not card.status(card)["available"]:
        pytest.fail(f"{card_id}: zoo weights not built: run `make zoo`", pytrace=False)
    x, y = train.load_split(card.dataset, "test")
    assert x.shape == (500, 2)
    assert train.accuracy(card.loader(card), x, y) >= RECIPES[card_id]["target_accuracy"]
