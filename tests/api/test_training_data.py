"""``wb.run(..., training_data=...)``: analyzers that train or prune (learning_stop, lrp_pruning) run on the
user's own in-memory module with the user's labelled arrays; the module stays untouched; bad pairs are one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from tests.api.conftest import assert_unchanged, snapshot
from workbench.core.analyzer import get_analyzer
from workbench.core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits_xy():
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.images[:300, None] / 16.0, dtype=torch.float32), torch.tensor(d.target[:300])


@pytest.mark.parametrize("name", ["learning_stop", "lrp_pruning"])
def test_trains_or_prunes_on_the_users_arrays(name, user_cnn, digits_xy):
    x, y = digits_xy
    before = snapshot(user_cnn)
    r = wb.run(name, model=user_cnn, data=x[:4], labels=y[:4], device="cpu", training_data=(x, y),
               **get_analyzer(name).smoke_config)
    assert r.model.startswith("session.") and r.checks and r.figures()
    assert_unchanged(user_cnn, before)


def test_the_split_is_seeded_and_holds_out_a_fifth(user_cnn, digits_xy):
    from workbench.runtime import session

    x, y = digits_xy
    card = session.card_for(user_cnn, x[:2].numpy(), wb.api.Hints())
    a = session.with_training_data(card, (x, y), seed=3).extra["training_data"]
    b = session.with_training_data(card, (x, y), seed=3).extra["training_data"]
    (xtr, ytr), (xte, yte) = a("train"), a("test")
    assert len(yte) == 60 and len(ytr) == 240 and np.array_equal(xte, b("test")[0])
    together = np.concatenate([xtr, xte]).reshape(300, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, x.numpy().reshape(300, -1)))  # nothing lost
    explicit = session.with_training_data(card, {"train": (x[:200], y[:200]), "test": (x[200:], y[200:])})
    assert np.array_equal(explicit.extra["training_data"]("test")[1], y[200:].numpy())


@pytest.mark.parametrize("bad, words", [
    (lambda x, y: (x[:, :, :4], y), "shape"),
    (lambda x, y: (x, y + 10), "outputs"),
    (lambda x, y: x, "not a pair"),
    (lambda x, y: {"train": (x, y)}, "keys"),
    (lambda x, y: (x[:3], y[:3]), "too few"),
    (lambda x, y: (x, y[:5]), "class indices"),
])
def test_bad_training_data_is_one_line(bad, words, user_cnn, digits_xy):
    x, y = digits_xy
    before = snapshot(user_cnn)
    with pytest.raises(DataError) as e:
        wb.run("lrp_pruning", model=user_cnn, data=x[:2], device="cpu", training_data=bad(x, y))
    assert words in e.value.one_line() and "\n" not in e.value.one_line()
    assert_unchanged(user_cnn, before)


def test_zoo_models_refuse_training_data(digits_xy):
    with pytest.raises(ConfigError, match="own in-memory module"):
        wb.run("learning_stop", model="digits_vgg.sk", training_data=digits_xy)
