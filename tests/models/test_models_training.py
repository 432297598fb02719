"""make zoo: trained cards reach their recorded accuracy; the trainer skips, fails and writes correctly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import models.zoo as zoo
from models import train
from models.recipes import RECIPES
from models.weights import read_manifest, zoo_weights_path
from workbench.core.cards import get_card

CARDS = {c.id: c for c in zoo.CARDS}


@pytest.mark.parametrize("card_id", sorted(RECIPES))
def test_trained_card_reaches_its_recorded_accuracy(card_id):
    card = CARDS.get(card_id) or get_card(card_id)  # braindecode.* cards live in models/eeg_real.py
    status = card.status(card)
    if not status["available"]:
        pytest.fail(f"{card_id}: zoo weights not built ({status['note']}); `make test` builds them", pytrace=False)
    recorded = read_manifest()["cards"][card_id]["test_accuracy"]
    x, y = train.load_split(card.dataset, "test")
    acc = train.accuracy(card.loader(card), x, y)
    assert acc >= recorded - 1e-5
    assert acc >= RECIPES[card_id]["target_accuracy"]


def test_random_shift_translates_and_fills_with_background():
    x = -torch.ones(64, 1, 8, 8)
    x[:, :, 3, 3] = 1.0
    out = train.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and (out == 1.0).sum() == 64 and set(out.unique().tolist()) == {-1.0, 1.0}
    rows, cols = torch.nonzero(out[:, 0] == 1.0)[:, 1:].T
    assert rows.min() >= 1 and rows.max() <= 5 and cols.min() >= 1 and cols.max() <= 5
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # many different offsets
    assert torch.equal(train.random_shift(x, 0, torch.Generator()), x)


@pytest.fixture
def tiny_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ZOO_DIR", str(tmp_path))
    card_id = "mnist1d_cnn.default"
    monkeypatch.setitem(RECIPES, card_id, {**RECIPES[card_id], "epochs": 1, "target_accuracy": 0.2})
    return card_id


def test_build_zoo_writes_verified_weights_then_skips(tiny_recipe, capsys):
    assert train.build_zoo([tiny_recipe]) == []
    entry = read_manifest()["cards"][tiny_recipe]
    assert entry["seed"] == 0 and entry["recipe"]["hyperparameters"]["epochs"] == 1
    assert entry["params"] == 28458 and 0.2 <= entry["test_accuracy"] <= 1.0
    card = CARDS[tiny_recipe]
    assert card.status(card)["sha256"] == entry["sha256"] and card.loader(card) is not None
    first = zoo_weights_path(tiny_recipe).read_bytes()
    assert train.build_zoo([tiny_recipe]) == []
    assert f"{tiny_recipe}: up to date" in capsys.readouterr().out
    assert train.build_zoo([tiny_recipe], force=True) == []
    assert zoo_weights_path(tiny_recipe).read_bytes() == first  # seeded: bit-identical retrain


def test_missed_target_fails_and_writes_nothing(tiny_recipe, monkeypatch):
    monkeypatch.setitem(RECIPES, tiny_recipe, {**RECIPES[tiny_recipe], "target_accuracy": 1.01})
    failures = train.build_zoo([tiny_recipe])
    assert len(failures) == 1 and "below the target" in failures[0]
    assert not zoo_weights_path(tiny_recipe).exists() and read_manifest()["cards"] == {}
    assert train.main(["--only", tiny_recipe]) == 1


def test_manifest_is_plain_json_with_the_recipe(tiny_recipe):
    train.build_zoo([tiny_recipe])
    data = json.loads((zoo_weights_path(tiny_recipe).parent / "manifest.json").read_text())
    entry = data["cards"][tiny_recipe]
    keys = ("sha256", "recipe", "recipe_hash", "seed", "test_accuracy", "date", "train_seconds", "params")
    assert all(key in entry for key in keys)
    assert np.isfinite(entry["train_seconds"])
