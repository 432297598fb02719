"""User safetensors become a card that loads, runs and survives a restart; bad files change nothing."""

import pytest
import torch
from safetensors.torch import save

from workbench.core.cards import get_card, list_cards
from workbench.core.errors import WeightsError
from workbench.runtime import RunSpec, run
from workbench.runtime.inspect import architecture_table
from workbench.runtime.zoo import add_user_weights, load_user_cards


def test_upload_registers_a_card_that_runs(toy_card, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    sd = {k: v * 2 for k, v in toy_card.build().state_dict().items()}
    new_id = add_user_weights("toy_cnn.test", save(sd), "doubled <b>")
    card = get_card(new_id)
    assert new_id.startswith("toy_cnn.user_") and card.weights_source == "user" and "<" not in card.title
    loaded = card.loader(card)
    assert torch.equal(loaded.state_dict()["head.2.weight"], sd["head.2.weight"])
    r = run(RunSpec("attribution", new_id, "digits:0", {"method": "saliency"}, device="cpu"))
    assert r.provenance.weights_sha256 == card.sha256 and len(card.sha256) == 64
    assert new_id in load_user_cards()  # found again after a restart


def test_bad_upload_is_refused_and_registers_nothing(toy_card, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    before = {c.id for c in list_cards()}
    bad = dict(toy_card.build().state_dict())
    bad.pop("head.2.bias")
    with pytest.raises(WeightsError):
        add_user_weights("toy_cnn.test", save(bad), "broken")
    assert {c.id for c in list_cards()} == before
    assert not list(tmp_path.rglob("*.safetensors"))


def test_architecture_table_lists_layers_and_leaves_no_hooks(toy_card):
    from workbench.core.hooks import count_hooks
    from workbench.runtime import load_model

    rows = architecture_table("toy_cnn.test")
    assert [r["type"] for r in rows][:2] == ["Conv2d", "ReLU"] and rows[0]["output"] == "(4, 16, 16)"
    assert count_hooks(load_model("toy_cnn.test", "cpu").module) == 0
