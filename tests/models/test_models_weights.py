"""The zoo weights loader: verified hashes, refusals, the package checkpoint, seeded random weights."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

import models.zoo as zoo
from models import weights as zw
from models.architectures import MNIST1DCNN, DigitsVGG
from workbench.core.errors import WeightsError, ZooNotBuiltError
from workbench.data.registry import get_samples

CARDS = {c.id: c for c in zoo.CARDS}
VGG = CARDS["digits_vgg.sk"]


@pytest.fixture
def zoo_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ZOO_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty private torch hub cache, so a real user cache cannot change what a test sees."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def _write_zoo(zoo_dir, card_id, module, sha=None):
    path = zoo_dir / f"{card_id}.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {"format": 1, "cards": {card_id: {"sha256": sha or real, "test_accuracy": 0.5,
                                                 "recipe": {"name": "test"}, "seed": 0}}}
    (zoo_dir / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_missing_zoo_weights_raise_not_built(zoo_tmp):
    with pytest.raises(ZooNotBuiltError, match="weights not built") as err:
        VGG.loader(VGG)
    assert "make zoo" in err.value.hint
    status = VGG.status(VGG)
    assert status["available"] is False and "make zoo" in status["note"]


def test_zoo_weights_with_matching_sha_load(zoo_tmp):
    torch.manual_seed(3)
    ref = DigitsVGG()
    _write_zoo(zoo_tmp, VGG.id, ref)
    model = VGG.loader(VGG)
    assert not model.training
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    status = VGG.status(VGG)
    assert status["available"] and status["accuracy"] == 0.5 and len(status["sha256"]) == 64


def test_sha256_mismatch_is_refused(zoo_tmp):
    _write_zoo(zoo_tmp, VGG.id, DigitsVGG(), sha="0" * 64)
    with pytest.raises(WeightsError, match="sha256"):
        VGG.loader(VGG)
    assert VGG.status(VGG)["available"] is False


def test_tampered_file_is_refused(zoo_tmp):
    path = _write_zoo(zoo_tmp, VGG.id, DigitsVGG())
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="manifest says"):
        VGG.loader(VGG)


def test_weights_of_another_architecture_are_refused(zoo_tmp):
    _write_zoo(zoo_tmp, VGG.id, MNIST1DCNN())
    with pytest.raises(WeightsError, match="do not fit"):
        VGG.loader(VGG)


def test_malformed_manifest_is_refused(zoo_tmp):
    (zoo_tmp / "manifest.json").write_text("{not json")
    with pytest.raises(WeightsError, match="manifest"):
        zw.read_manifest()


def test_package_checkpoint_is_pinned():
    card = CARDS["efficientnet_lite0.imagenet"]
    assert card.sha256 == zw.EFFICIENTNET_LITE0_SHA256
    assert zw.sha256_file(zw.efficientnet_lite0_checkpoint()) == card.sha256
    wrong = dataclasses.replace(card, sha256="f" * 64)
    with pytest.raises(WeightsError, match="expected"):
        wrong.loader(wrong)
    assert wrong.status(wrong)["available"] is False


def _top1(card, model, data_id):
    x = torch.from_numpy(card.preprocess(get_samples(data_id)[0]))[None]
    with torch.no_grad():
        return int(model(x).argmax(1))


def test_efficientnet_recognises_the_bundled_cat_and_espresso():
    card = CARDS["efficientnet_lite0.imagenet"]
    state = torch.random.get_rng_state()
    model = card.loader(card)
    assert torch.equal(torch.random.get_rng_state(), state)  # loading does not move the caller's RNG
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    assert 281 <= _top1(card, model, "skimage:chelsea") <= 285
    assert card.class_names[_top1(card, model, "skimage:coffee")] == "espresso"


def test_random_cards_are_seeded_and_leave_the_global_rng_alone(torch_home):
    card = CARDS["resnet18.untrained"]
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = card.loader(card)
    assert torch.equal(torch.rand(3), expected)
    b = card.loader(card)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                                 strict=True))
    other = dataclasses.replace(card, seed=1).loader(dataclasses.replace(card, seed=1))
    assert not torch.equal(a.conv1.weight, other.conv1.weight)
    assert not a.training and not any(getattr(m, "inplace", False) for m in a.modules())
    status = card.status(card)
    assert status["source"] == "random" and status["trained"] is False and "seed 0" in status["note"]
    assert status["params"] == sum(p.numel() for p in a.parameters())


def test_torch_cache_file_with_wrong_name_hash_is_refused(torch_home):
    import torchvision

    card = CARDS["resnet18.untrained"]
    name = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    torch_home.mkdir(parents=True)
    torch.save(card.build().state_dict(), torch_home / name)  # real layout, wrong bytes for its name
    assert zw.torch_cache_file(card) == torch_home / name
    with pytest.raises(WeightsError, match="does not match"):
        card.loader(card)
    status = card.status(card)
    assert status["available"] is False and status["source"] == "torch_cache"


def test_torch_cache_file_with_matching_name_hash_is_used(torch_home, monkeypatch):
    card = CARDS["resnet18.untrained"]
    torch.manual_seed(123)
    ref = card.build()
    torch_home.mkdir(parents=True)
    tmp = torch_home / "resnet18.pth"
    torch.save(ref.state_dict(), tmp)
    path = torch_home / f"resnet18-{zw.sha256_file(tmp)[:8]}.pth"
    tmp.rename(path)
    monkeypatch.setattr(zw, "torch_cache_file", lambda c: path)  # torchvision's own name is unforgeable
    model = card.loader(card)
    assert torch.equal(model.conv1.weight, ref.conv1.weight)
    status = card.status(card)
    assert status["source"] == "torch_cache" and status["trained"] and status["sha256"].startswith(
        path.name[9:17])
