"""timm.<name> cards: resolved on demand, architecture only (nothing downloaded), the model's own
preprocessing, and they run through the one runner; the user's safetensors make a user card."""

from __future__ import annotations

import pytest

pytest.importorskip("timm")

from safetensors.torch import save  # noqa: E402

from workbench.core.cards import get_card  # noqa: E402
from workbench.core.errors import UnknownIdError  # noqa: E402
from workbench.runtime import RunSpec, run  # noqa: E402


def test_timm_card_runs_without_network(monkeypatch, tmp_path):
    import socket

    def refuse(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    card = get_card("timm.resnet18")
    assert card.input_shape == (3, 224, 224) and card.weights_source == "random" and len(card.class_names) == 1000
    r = run(RunSpec("attribution", "timm.resnet18", "skimage:chelsea", {"method": "saliency", "sanity_check": False},
                    device="cpu"))
    assert r.arrays["attr_saliency"].shape == (1, 224, 224)
    with pytest.raises(UnknownIdError):
        get_card("timm.no_such_net")


def test_user_safetensors_for_a_timm_architecture(monkeypatch, tmp_path):
    from workbench.runtime.zoo import add_user_weights

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    base = get_card("timm.resnet18")
    new_id = add_user_weights("timm.resnet18", save(base.build().state_dict()), "mine")
    assert new_id.startswith("timm.user_") and get_card(new_id).weights_source == "user"
