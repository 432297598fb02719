"""LRP tests that can fail: exact conservation on a bias-free float64 net, a closed ledger on a BatchNorm
ResNet, controls that must break both, nothing left on the model, the randomization check, the page."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workbench.core.cards import ModelCard, list_cards, register_card
from workbench.core.errors import ConfigError
from workbench.core.hooks import count_hooks
from workbench.runtime import RunSpec, load_model, run

APP = str(Path(__file__).resolve().parents[3] / "workbench" / "app.py")
EXACT = {"dtype": "float64", "epsilon": "1e-9", "stabilizer": "1e-9", "sanity_check": "false"}


class Block(nn.Module):
    """relu2(bn2(conv2(relu1(bn1(conv1 x)))) + x): a residual add the canonizer must handle."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
        self.conv2, self.bn2, self.relu2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + x)


class BiasFreeResNet(nn.Module):
    """(N, 1, 16, 16) -> (N, 3); no conv/linear bias, BatchNorms with zero mean and zero beta: no effective
    bias anywhere once merged, so LRP must hand the whole logit to the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.relu, self.pool = (nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                                     nn.ReLU(), nn.MaxPool2d(2))
        self.block = Block(8)
        self.avg, self.flat, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3, bias=False)

    def forward(self, x):
        return self.fc(self.flat(self.avg(self.block(self.pool(self.relu(self.bn(self.conv(x))))))))


def _build() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = BiasFreeResNet().eval()
        for bn in (m.bn, m.block.bn1, m.block.bn2):
            bn.weight.data.uniform_(0.5, 1.5)
            bn.running_var.data.uniform_(0.5, 2.0)
    return m


def _pre(sample) -> np.ndarray:
    a = torch.as_tensor(sample.array if sample.array.ndim == 2 else sample.array.mean(-1)).float()
    return (nn.functional.interpolate(a[None, None], size=(16, 16), mode="bilinear")[0] * 2 - 1).numpy()


def _disp(sample) -> np.ndarray:
    return np.repeat((_pre(sample)[0][..., None] + 1) / 2, 3, -1).clip(0, 1)


NOBIAS = ModelCard(
    id="lrp_nobias.test", kind="image2d", title="bias-free residual test net", architecture="BiasFreeResNet",
    input_shape=(1, 16, 16), build=_build, loader=lambda card: _build(),
    status=lambda card: {"available": True, "sha256": "1" * 64, "params": 1000, "accuracy": None},
    preprocess=_pre, display=_disp, weights_source="random", dataset="digits", class_names=("a", "b", "c"),
    default_data="digits:0", trained=False)


@pytest.fixture(scope="module")
def nobias_card() -> ModelCard:
    list_cards()
    if "lrp_nobias.test" not in {c.id for c in list_cards()}:
        register_card(NOBIAS)
    return NOBIAS


def _check(result, name):
    return next(c for c in result.checks if c.name == name)


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "paper", "epsilon_gamma_box"])
def test_bias_free_float64_input_relevance_equals_the_logit(nobias_card, composite):
    r = run(RunSpec("lrp", "lrp_nobias.test", "digits:0,5,9", {**EXACT, "composite": composite}, device="cpu"))
    assert r.metrics["input_rel_error"] < 1e-6  # the whole logit reaches the input
    assert r.metrics["conservation_rel_error"] < 1e-6
    assert abs(r.metrics["bias_absorbed_fraction"]) < 1e-6
    assert r.info["trustworthy"] and _check(r, "canonized").passed
    assert any("residual" in n for n in r.info["canonizer_notes"])
    assert r.provenance.dtype == "float64"  # the precision of the pass, not the run's float32 default
    assert r.info["input_bounds"] == "card preprocessing" and r.info["input_bounds_note"] == ""
    assert (_check(r, "input_bounds_from_preprocessing").passed if composite != "epsilon_plus_flat"
            else all(c.name != "input_bounds_from_preprocessing" for c in r.checks))


def test_a_card_whose_preprocessing_fails_gets_data_range_bounds_and_says_so():
    """No silent fallback: z^B bounds from the batch's range are reported in info and fail a check."""
    import dataclasses

    from analyzers._shared.lrp import input_bounds

    def broken(sample):
        raise ValueError("no flat pictures here")

    x = torch.linspace(-1, 1, 2 * 256).reshape(2, 1, 16, 16)
    b = input_bounds(dataclasses.replace(NOBIAS, preprocess=broken), x)
    assert b.source == "data range" and "ValueError: no flat pictures here" in b.note
    assert float(b.low.min()) == -1.0 and float(b.high.max()) == 1.0
    good = input_bounds(NOBIAS, x)
    assert good.source == "card preprocessing" and good.note == ""
    assert input_bounds(None, x).source == "data range"


def test_controls_break_conservation(nobias_card):
    """alpha2-beta1 is not conservative (innvestigate #116); without canonization the residual add copies
    relevance into both branches: the books must not close and no map is drawn."""
    ab = run(RunSpec("lrp", "lrp_nobias.test", "digits:0,5,9", {**EXACT, "composite": "epsilon_alpha2_beta1"}))
    assert ab.metrics["input_rel_error"] > 1e-3
    raw = run(RunSpec("lrp", "lrp_nobias.test", "digits:0,5,9", {**EXACT, "canonize": "false"}))
    assert raw.metrics["conservation_rel_error"] > 0.05 and not _check(raw, "ledger_closes").passed
    assert not raw.info["trustworthy"] and raw.info["no_map_reason"].startswith("LRP is not conservative")
    assert any(c.name.startswith("layer:block") for c in raw.checks)
    assert raw.figures()[0].layout.title.text.startswith("No heat map")


@pytest.mark.zoo("digits_resnet.sk")
def test_ledger_closes_on_the_batchnorm_resnet_and_leaves_the_shared_model_alone():
    module = load_model("digits_resnet.sk", "cpu").module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    r = run(RunSpec("lrp", "digits_resnet.sk", "digits:test:4", {"sanity_check": "false"}, device="cpu"))
    assert r.metrics["conservation_rel_error"] < 1e-3 and _check(r, "ledger_closes").passed
    assert 0.05 < r.metrics["bias_absorbed_fraction"] < 0.95  # merged BN biases really absorb relevance
    assert _check(r, "canonized").passed and _check(r, "canonization_keeps_output").passed
    absorbed = r.arrays["ledger_r_out"] - r.arrays["ledger_r_in"]
    assert np.allclose(r.arrays["input_relevance"] + absorbed.sum(0) + r.arrays["leak"],
                       r.arrays["explained_logit"])
    assert count_hooks(module) == 0 and "forward" not in module.__dict__
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ConfigError):
        run(RunSpec("lrp", "digits_resnet.sk", "digits:0", {"target": "99"}))
    assert count_hooks(module) == 0


def test_an_error_mid_pass_reverts_canonizers_and_hooks(nobias_card, monkeypatch):
    """The analyzer works on a private copy, and even that copy is restored when the pass fails."""
    import analyzers.lrp.ledger as ledger
    from analyzers._shared.lrp import make_composite, plan_canonization

    model = _build()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def boom(*a, **k):
        raise RuntimeError("injected")

    monkeypatch.setattr(ledger, "grads_or_zeros", boom)
    x = torch.randn(2, 1, 16, 16)
    with pytest.raises(RuntimeError, match="injected"):
        ledger.explain(model, make_composite("paper", -3.0, 3.0, canonizers=plan_canonization(model).canonizers),
                       x, torch.tensor([0, 1]))
    assert count_hooks(model) == 0 and "forward" not in model.__dict__ and not hasattr(model, "canonizer_sums")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(bn.eps == 1e-5 for bn in model.modules() if isinstance(bn, nn.BatchNorm2d))


@pytest.mark.zoo("efficientnet_lite0.imagenet")
def test_efficientnet_is_canonized_but_its_biases_swallow_the_logit_and_we_say_so():
    """EfficientNet-Lite0 (BN after every conv, ReLU6, 9 skip additions): the traced canonizer merges all 49
    BatchNorms and routes every skip through a Sum, so the books close; but with EpsilonPlusFlat the merged
    biases absorb > 99% of the logit, so no map is drawn and the report says why."""
    epf = run(RunSpec("lrp", "efficientnet_lite0.imagenet", "skimage:chelsea", {"sanity_check": "false"}))
    assert _check(epf, "ledger_closes").passed and _check(epf, "canonized").passed
    assert epf.metrics["input_relevance_fraction"] < 0.01 and not _check(epf, "input_share").passed
    assert "absorb" in epf.info["no_map_reason"] and "No heat map" in epf.summary()
    assert epf.figures()[0].layout.title.text.startswith("No heat map")


@pytest.mark.zoo("digits_vgg.sk")
def test_randomization_changes_the_map_and_the_no_op_control_fails():
    r = run(RunSpec("lrp", "digits_vgg.sk", "digits:test:4", {}, device="cpu"))
    assert r.metrics["sanity_rank_corr"] < 0.5 and _check(r, "randomization").passed
    same = run(RunSpec("lrp", "digits_vgg.sk", "digits:test:2", {"randomize_layers": "0"}, device="cpu"))
    assert same.metrics["sanity_rank_corr"] > 0.99 and not _check(same, "randomization").passed


@pytest.mark.zoo("mnist1d_cnn.default", "toy_mlp.moons")
@pytest.mark.parametrize("model,data,shape", [("mnist1d_cnn.default", "mnist1d:test:2", (2, 1, 40)),
                                              ("toy_mlp.moons", "moons:test:3", (3, 2))])
def test_signals_and_vectors_close_their_books(model, data, shape):
    r = run(RunSpec("lrp", model, data, {"composite": "paper"}, device="cpu"))
    assert r.arrays["relevance"].shape == shape and r.info["trustworthy"]
    assert r.metrics["conservation_rel_error"] < 1e-3
    assert len(r.figures()) >= 4 and r.summary()


@pytest.mark.zoo("digits_resnet.sk")
def test_page_explains_and_prunes_and_saves_the_pruned_model(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/lrp.py")
    at.run()
    assert not at.exception and at.title[0].value == "Layer-wise relevance propagation"
    next(b for b in at.button if b.label == "Run LRP").click().run()
    deadline = time.time() + 90
    while not at.get("plotly_chart") and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert '"type":"heatmap"' in at.get("plotly_chart")[0].proto.spec.replace(" ", "")
    at.text_input(key="lrp_pruning.rates").set_value("30").run()
    at.multiselect(key="lrp_pruning.criteria").set_value(["lrp"]).run()
    next(b for b in at.button if b.label == "Run pruning").click().run()
    while not any(b.label == "Save pruned model" for b in at.button) and time.time() < deadline + 90:
        time.sleep(0.5)
        at.run()
    next(b for b in at.button if b.label == "Save pruned model").click().run()
    assert not at.exception and any("digits_vgg.pruned_" in s.value for s in at.success)
    assert list((tmp_path / "user_weights").glob("digits_vgg.pruned_*.safetensors"))


def test_canonizers_leave_no_attribute_shadowing_a_parameter_or_buffer():
    """zennit 1.0 restores merged layers with object.__setattr__; ours puts every tensor back where nn.Module
    keeps it, so a later resize or dtype change reaches forward (it failed on pruning before the fix)."""
    from analyzers._shared.lrp import plan_canonization

    model = _build()
    x = torch.randn(2, 1, 16, 16)
    handles = [h for c in plan_canonization(model).canonizers for h in c.apply(model)]
    for h in reversed(handles):
        h.remove()
    assert [(n, k) for n, m in model.named_modules() for k in (*m._parameters, *m._buffers) if k in vars(m)] == []
    model.bn.running_mean = model.bn.running_mean + 1.0  # a buffer swap must be seen by forward
    assert torch.equal(model.double()(x.double()), model(x.double()))
    assert model.bn.running_mean.dtype == torch.float64 and model.conv.bias is None


def test_one_lrp_forward_names_the_class_and_the_canonization_check_runs_on_its_budget(nobias_card):
    """Issue 21: the explained class comes from the LRP pass's own forward; the un-canonized model runs only on
    the canonization check's budget (the first ceil(N / 8) samples), and the result says so."""
    import dataclasses

    from workbench.core.analyzer import get_analyzer
    from workbench.core.config import from_dict
    from workbench.runtime import RunContext, make_batch

    handle = load_model("lrp_nobias.test", "cpu")
    handle = dataclasses.replace(handle, module=_build())  # canonizers work in place: a private model
    batch = make_batch(NOBIAS, "digits:0-8", "cpu")
    sizes: list[int] = []
    hook = handle.module.register_forward_pre_hook(lambda m, args: sizes.append(int(args[0].shape[0])))
    try:
        cls = get_analyzer("lrp")
        r = cls().run(handle, batch, from_dict(cls.Config, {"sanity_check": False}), RunContext(device="cpu"))
    finally:
        hook.remove()
    assert sizes == [2, 9]  # the check's 2 of 9 samples, then the one LRP pass
    kept = _check(r, "canonization_keeps_output")
    assert r.info["canonization_checked_samples"] == 2 and "first 2 of 9" in kept.message
    assert kept.passed and _check(r, "ledger_closes").passed
    assert (r.arrays["target"] == r.arrays["logits"].argmax(1)).all()
