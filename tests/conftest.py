"""Shared fixtures: a tiny seeded CNN card for fast tests (registered only inside the test run)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from workbench.core.cards import ModelCard, list_cards, register_card  # noqa: E402

torch.set_num_threads(2)


class TinyCNN(nn.Module):
    """(N, 1, 16, 16) -> (N, 3) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.features(x))


def _build() -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN()


def _pre(sample) -> np.ndarray:
    a = sample.array if sample.array.ndim == 2 else sample.array.mean(-1)
    t = torch.nn.functional.interpolate(torch.as_tensor(a)[None, None].float(), size=(16, 16), mode="bilinear")
    return t[0].numpy()


def _disp(sample) -> np.ndarray:
    return np.repeat(_pre(sample)[0][..., None], 3, -1).clip(0, 1)


TOY = ModelCard(
    id="toy_cnn.test", kind="image2d", title="Tiny test CNN", architecture="TinyCNN", input_shape=(1, 16, 16),
    build=_build, loader=lambda card: _build().eval(),
    status=lambda card: {"available": True, "sha256": "0" * 64, "params": 431, "accuracy": None},
    preprocess=_pre, display=_disp, weights_source="random", dataset="digits",
    class_names=("a", "b", "c"), default_data="digits:0", trained=False, layers_of_interest=("features.3",))


@pytest.fixture(scope="session")
def toy_card() -> ModelCard:
    list_cards()  # load plug-ins first so the toy card is added beside them
    if "toy_cnn.test" not in {c.id for c in list_cards()}:
        register_card(TOY)
    return TOY


def zoo_built(model_id: str) -> bool:
    from workbench.core.cards import get_card

    card = get_card(model_id)
    return bool(card.status(card).get("available"))


def require_zoo(*model_ids: str) -> None:
    """Fail, never skip, when zoo weights are missing: `make test` builds the zoo before the suite
    (and CI runs `make test`), so a missing model means a broken build, not an optional extra."""
    missing = [m for m in model_ids if not zoo_built(m)]
    if missing:
        pytest.fail(f"zoo weights missing for {', '.join(missing)}: run `make zoo` (`make test` builds them first)",
                    pytrace=False)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "zoo(*model_ids): the test needs these zoo weights; missing ones fail it")


def pytest_runtest_setup(item) -> None:
    for mark in item.iter_markers("zoo"):
        require_zoo(*mark.args)
