"""Receptive-field tests that can fail: published torchvision values, hand-computed toy stacks,
residual/concat branches where the longest path decides, global layers, the gradient probe, the
RepLKNet area-ratio aggregation, the sqrt(n) growth law, the dilation control, hooks and the page."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analyzers.receptive_field import erf as rf_erf
from analyzers.receptive_field.graph import analyze
from analyzers.receptive_field.growth import Stack, growth_experiment, stack_map
from analyzers.receptive_field.probe import probe_network, probe_size, run_probe
from tests.conftest import require_zoo
from workbench.core.cards import ModelCard, list_cards, register_card
from workbench.core.errors import ConfigError, UnknownIdError
from workbench.runtime import RunContext, RunSpec, run


def _rf(model: nn.Module, layer: str, shape=(1, 32, 32)):
    return analyze(model.eval(), shape).find(layer).box


def _tv(name: str) -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()


# ---- published values ---------------------------------------------------------------------------

def test_torchvision_resnet50_layers_match_published_values():
    a = analyze(_tv("resnet50"), (3, 64, 64))  # the RF does not depend on the input size
    expect = {"conv1": (7, 2, 3), "maxpool": (11, 4, 5), "layer1": (35, 4, 17), "layer2": (91, 8, 45),
              "layer3": (267, 16, 133), "layer4": (427, 32, 213)}
    for layer, (r, j, p) in expect.items():
        box = a.find(layer).box
        assert box.kind == "local" and box.r == (r, r) and box.j == (j, j) and box.eff_padding == (p, p), layer
    assert a.find("avgpool").box.kind == "global" and a.find("fc").box.kind == "global"


def test_torchvision_resnet18_and_vgg16_match_published_values():
    assert analyze(_tv("resnet18"), (3, 64, 64)).find("layer4").box.r == (435, 435)
    vgg = analyze(_tv("vgg16"), (3, 64, 64)).find("features").box
    assert vgg.r == (212, 212) and vgg.j == (32, 32) and vgg.eff_padding == (90, 90)


def test_tf_slim_style_resnet50_gives_483_not_427():
    """TF-slim strides the 3x3 conv of the LAST unit of a stage (shortcut subsampled); torchvision the
    FIRST unit of the next stage. Moving the strides must turn 427 into the often quoted 483."""
    m = _tv("resnet50")
    stages = [m.layer1, m.layer2, m.layer3, m.layer4]
    for prev, stage in zip(stages[:-1], stages[1:], strict=True):
        stage[0].conv2.stride, stage[0].downsample[0].stride = (1, 1), (1, 1)
        prev[-1].conv2.stride = (2, 2)
        prev[-1].downsample = nn.MaxPool2d(1, stride=2)
    box = analyze(m, (3, 64, 64)).find("layer4").box
    assert box.r == (483, 483) and box.j == (32, 32)


def test_the_analyzer_reports_the_metrics_of_the_issue_for_torchvision_resnet50():
    r = run(RunSpec("receptive_field", "torchvision.resnet50", config={"layer": "layer4", "erf": "false",
                                                                       "probe": "false"}, device="cpu"))
    assert (r.metrics["rf_size"], r.metrics["rf_jump"], r.metrics["rf_start"]) == (427, 32, 0)
    assert r.metrics["rf_global"] == 0 and r.passed
    with pytest.raises(UnknownIdError):
        run(RunSpec("receptive_field", "torchvision.not_a_net", config={"erf": "false"}))


# ---- toy stacks and branches (hand-computed) -------------------------------------------------------

def test_three_3x3_convs_give_7_and_stride_plus_dilation_give_13():
    plain = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)])
    assert _rf(plain, "2").r == (7, 7)
    # 3x3 s1: r=3 j=1; 3x3 s2: r=3+2=5, j=2; 3x3 d2 (k'=5): r=5+4*2=13, j=2; start stays 0
    mixed = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, stride=2, padding=1),
                          nn.Conv2d(1, 1, 3, dilation=2, padding=2))
    box = _rf(mixed, "2")
    assert box.r == (13, 13) and box.j == (2, 2) and box.start == (0, 0)
    # valid padding shifts unit 0: k3 p0 -> start 1; then k2 s2 p0 -> start 1 + 0.5 = 1.5
    box = _rf(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)), "1")
    assert box.r == (4, 4) and box.start == (1.5, 1.5) and box.eff_padding == (0, 0)


def test_asymmetric_padding_and_kernels_per_axis():
    m = nn.Sequential(nn.ZeroPad2d((2, 0, 1, 0)), nn.Conv2d(1, 1, (1, 7)), nn.Conv2d(1, 1, (5, 1), stride=(2, 1)))
    box = _rf(m, "2")
    # height: pad top 1 -> start -1; k1 -> r 1; k5 p0 -> r 5, start -1 + 2 = 1, j 2
    # width: pad left 2 -> start -2; k7 p0 -> r 7, start -2 + 3 = 1; k1 -> unchanged
    assert box.r == (5, 7) and box.j == (2, 1) and box.start == (1, 1)


class _TwoBranch(nn.Module):
    def __init__(self, left: nn.Module, right: nn.Module, cat: bool = False) -> None:
        super().__init__()
        self.left, self.right, self.cat = left, right, cat

    def forward(self, x):
        a, b = self.left(x), self.right(x)
        return torch.cat([a, b], 1) if self.cat else a + b


def test_residual_and_concat_branches_take_the_longest_path():
    deep = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))
    assert _rf(_TwoBranch(deep, nn.Conv2d(1, 1, 1)), "output").r == (7, 7)  # skip with a 1x1: 7, not 1
    assert _rf(_TwoBranch(nn.Identity(), deep), "output").r == (7, 7)  # identity skip
    assert _rf(_TwoBranch(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 9, padding=4), cat=True), "output").r \
        == (9, 9)
    # misaligned branches: the union of the boxes, not the larger one ([-1,1] u [-2,0] -> r 4, start -0.5)
    shifted = nn.Sequential(nn.ZeroPad2d((2, 0, 2, 0)), nn.Conv2d(1, 1, 3))
    box = _rf(_TwoBranch(nn.Conv2d(1, 1, 3, padding=1), shifted), "output")
    assert box.r == (4, 4) and box.start == (-0.5, -0.5)


def test_a_registration_order_tool_would_be_wrong_here_but_the_graph_is_not():
    """torchvision registers downsample after conv2; stacking in module order would put its 1x1 stride-2
    conv on the main path and report jump 4."""
    block = _tv("resnet18").layer2[0]
    box = analyze(block, (64, 32, 32)).find("output").box
    assert box.r == (7, 7) and box.j == (2, 2)  # 3x3 s2 (r 3, j 2) then 3x3 at jump 2; the 1x1 adds nothing


class _SE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(self.fc(self.pool(y)))


class _Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.attn = nn.Conv2d(4, 8, 3, padding=1), nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        y = self.conv(x)
        t = y.flatten(2).transpose(1, 2)
        return self.attn(t, t, t)[0]


def test_global_layers_are_reported_as_global():
    assert _rf(_SE(), "output", (4, 16, 16)).kind == "global"
    assert _rf(_SE(), "conv", (4, 16, 16)).kind == "local"
    assert _rf(_Attn(), "attn", (4, 8, 8)).kind == "global"
    assert _rf(nn.Sequential(nn.Conv2d(4, 4, 3), nn.GroupNorm(2, 4)), "1", (4, 16, 16)).kind == "global"
    train_bn = nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
    assert _rf(train_bn, "1", (4, 16, 16)).kind == "local"  # eval: per-channel affine
    assert analyze(train_bn.train(), (4, 16, 16)).find("1").box.kind == "global"  # batch statistics
    train_bn.eval()


def test_an_unknown_op_is_flagged_and_treated_as_global():
    class Rolled(nn.Module):
        def forward(self, x):
            return torch.roll(F.conv2d(x, torch.ones(1, 1, 3, 3)), 1, -1)

    a = analyze(Rolled(), (1, 16, 16))
    assert a.find("output").box.kind == "global" and any("roll" in w for w in a.warnings)


def test_one_dimensional_model_in_milliseconds_on_an_eeg_card():
    class EEG1D(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv1d(4, 8, 25, padding=12), nn.ReLU(), nn.AvgPool1d(4),
                                          nn.Conv1d(8, 8, 9, padding=4, dilation=1))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 32, 2))

        def forward(self, x):
            return self.head(self.features(x))

    def pre(sample):  # a synthetic EEG window (30, 384) -> its first 4 channels resampled to (4, 128)
        t = torch.tensor(np.array(sample.array[:4]), dtype=torch.float32)[None]
        return F.interpolate(t, size=128, mode="linear")[0].numpy()

    list_cards()
    from workbench.data import get_samples

    get_samples("eeg_synth.drowsy")  # built in: a failure here is a real error, not a missing extra
    card = ModelCard(id="toy_eeg.rf_test", kind="eeg", title="toy EEG", architecture="EEG1D", input_shape=(4, 128),
                     build=EEG1D, loader=lambda c: EEG1D().eval(), status=lambda c: {"available": True},
                     preprocess=pre, display=pre, weights_source="random", dataset="synthetic",
                     class_names=("a", "b"), default_data="eeg_synth.drowsy", trained=False, sampling_rate=250.0)
    register_card(card, replace=True)
    r = run(RunSpec("receptive_field", "toy_eeg.rf_test", config={"layer": "features", "n_images": "4"},
                    device="cpu"))
    # 25 -> pool 4 (r 28, j 4) -> k9 at j4: r = 28 + 32 = 60 samples = 240 ms at 250 Hz
    assert r.metrics["rf_size"] == 60 and r.metrics["rf_size_ms"] == pytest.approx(240.0)
    assert r.metrics["rf_jump_ms"] == pytest.approx(16.0) and r.passed
    assert r.arrays["erf_map"].shape == (128,) and r.figures()
    require_zoo("eeg_compact.synth")  # Cui et al.'s 64-sample depthwise kernels at 128 Hz: 0.5 s
    z = run(RunSpec("receptive_field", "eeg_compact.synth", config={"layer": "depthwise", "erf": "false"}))
    assert z.metrics["rf_size_ms"] == 500.0 and z.passed and not z.info["warnings"]


# ---- gradient probe ---------------------------------------------------------------------------

def test_probe_matches_the_recurrence_only_with_max_pools_swapped():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(2, 2, 3, padding=1),
                      nn.MaxPool2d(2), nn.Conv2d(2, 1, 3, dilation=2, padding=2)).eval()
    a = analyze(m, (1, 32, 32))
    row = a.find("5")
    size = probe_size(row.box, (32, 32))
    good = run_probe(*probe_network(a.gm, row.node, swap=True)[:1], row.box, 1, size, 2)
    bad = run_probe(*probe_network(a.gm, row.node, swap=False)[:1], row.box, 1, size, 0)
    assert good.measured == tuple(int(r) for r in row.box.r) and good.disagreement == 0
    assert bad.measured[0] < row.box.r[0] and bad.disagreement > 0  # argmax routing shrinks the support


def test_probe_check_in_a_run_on_resnet18_and_vgg_style_maxpools():
    r = run(RunSpec("receptive_field", "torchvision.resnet18", config={"layer": "layer3", "erf": "false"},
                    device="cpu"))
    check = next(c for c in r.checks if c.name == "probe_matches_theory")
    assert check.passed and r.metrics["probe_rf_size"] == r.metrics["rf_size"] == 211


class _Upsampled(nn.Module):
    def __init__(self, mode: str, factor: float) -> None:
        super().__init__()
        self.down, self.conv = nn.Conv2d(1, 2, 3, 2, 1), nn.Conv2d(2, 1, 3, padding=1)
        self.mode, self.factor = mode, factor
        self.shuffle = nn.PixelShuffle(2) if mode == "shuffle" else None

    def forward(self, x):
        y = self.conv(self.down(x))
        if self.shuffle is not None:
            return self.shuffle(y.repeat(1, 4, 1, 1))
        return F.interpolate(y, scale_factor=self.factor, mode=self.mode,
                             align_corners=None if self.mode == "nearest" else False)


@pytest.mark.parametrize("mode,factor,exact", [("nearest", 2, False), ("bilinear", 2, False), ("bicubic", 2, False),
                                               ("shuffle", 2, False), ("bilinear", 0.5, True), ("nearest", 0.5, True)])
def test_interpolation_boxes_bound_the_probe_and_are_exact_for_integer_downsampling(mode, factor, exact):
    a = analyze(_Upsampled(mode, factor).eval(), (1, 64, 64))
    row = a.find("output")
    res = run_probe(probe_network(a.gm, row.node)[0], row.box, 1, (64, 64), 0)
    assert res.outside == 0 and row.box.approx is not exact  # the support lies inside the (bound) box
    assert (res.disagreement == 0) if exact else (res.disagreement <= 1.5)


# ---- ERF and the area ratio -------------------------------------------------------------------

def test_area_ratio_reproduces_the_replknet_aggregation_targets():
    n = 1024
    ratios, _ = rf_erf.area_ratios(rf_erf.log_normalised(np.ones((n, n))))
    assert np.allclose(ratios, [0.201, 0.300, 0.501, 0.990], atol=1.5e-3)
    delta = np.zeros((n, n))
    delta[n // 2, n // 2] = 1.0
    ratios, sides = rf_erf.area_ratios(rf_erf.log_normalised(delta))
    assert (sides == 3).all() and np.allclose(ratios, 9 / n ** 2)
    y, x = np.mgrid[:n, :n]
    g = np.exp(-((x - n // 2) ** 2 + (y - n // 2) ** 2) / (2 * 50.0 ** 2))
    assert list(rf_erf.area_ratios(rf_erf.log_normalised(g * 1e-3))[1]) == [61, 77, 107, 281]
    assert list(rf_erf.area_ratios(rf_erf.log_normalised(g * 100))[1]) == [95, 119, 161, 343]  # log10(x+1)
    assert np.allclose(rf_erf.axis_std(g), 50.0, atol=1e-6)


def _uniform_stack(dilated: bool) -> nn.Module:
    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(6)]
    if dilated:
        layers[3] = nn.Conv2d(1, 1, 3, padding=2, dilation=2, bias=False)
    for c in layers:
        nn.init.constant_(c.weight, 1 / 9)
    return nn.Sequential(*layers).eval()


def test_batched_erf_equals_one_image_at_a_time_and_dilation_widens_it():
    x = torch.randn(6, 1, 33, 33, generator=torch.Generator().manual_seed(0))
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, stride=2)).eval()
    one = rf_erf.erf_map(net, x, (2, 3), "replknet", RunContext(batch_size=1))[0]
    many = rf_erf.erf_map(net, x, (2, 3), "replknet", RunContext(batch_size=6))[0]
    assert np.allclose(one, many, rtol=1e-5, atol=1e-9) and one.sum() > 0
    # control: a dilation-2 layer inside six uniform 3x3 convs widens the measured ERF by exactly
    # sqrt(5*2/3 + 4*2/3) vs sqrt(6*2/3) px (variances of the box convolutions add)
    x = torch.ones(1, 1, 33, 33)
    plain = rf_erf.axis_std(rf_erf.erf_map(_uniform_stack(False), x, (2, 3), "luo", RunContext())[0])
    dil = rf_erf.axis_std(rf_erf.erf_map(_uniform_stack(True), x, (2, 3), "luo", RunContext())[0])
    assert np.allclose(plain, math.sqrt(4.0), atol=1e-6) and np.allclose(dil, math.sqrt(6.0), atol=1e-6)


@pytest.mark.zoo("digits_resnet.sk")
def test_erf_on_a_trained_digits_model_vs_fresh_weights():
    r = run(RunSpec("receptive_field", "digits_resnet.sk", "digits:test:24",
                    {"layer": "layer3", "n_images": "24", "input_size": "64"}, device="cpu"))
    for tag in ("", "untrained_"):
        ratios = [r.metrics[f"erf_{tag}area_ratio_t{t}"] for t in (20, 30, 50, 99)]
        assert all(0 < a <= b <= 1 for a, b in zip(ratios, ratios[1:], strict=False))
        assert r.metrics[f"erf_{tag}images"] == 24
    assert r.metrics["erf_std_px"] != pytest.approx(r.metrics["erf_untrained_std_px"], rel=1e-3)
    assert r.arrays["erf_map"].shape == (64, 64) and r.passed


# ---- growth law -------------------------------------------------------------------------------

def test_growth_law_exponent_is_one_half_and_uniform_weights_are_exact():
    r = run(RunSpec("receptive_field", "", config={"experiment": "erf_growth"}))
    e = r.metrics["erf_depth_exponent"]
    assert abs(e - 0.5) <= 0.1 and next(c for c in r.checks if c.name == "erf_growth_exponent").passed
    uniform = Stack(2, 1, "linear", "uniform")
    g = growth_experiment([5, 10, 20, 40], uniform, 0)
    assert np.allclose(g["sigma"][:, 0], np.sqrt(2 * np.array([5, 10, 20, 40]) / 3), atol=1e-9)
    # control: the theoretical RF grows like n, so its exponent is far outside 0.5 +- 0.1
    assert abs(np.polyfit(np.log(g["depths"]), np.log(g["trf"]), 1)[0] - 0.5) > 0.3
    gen = torch.Generator().manual_seed(0)
    assert rf_erf.axis_std(stack_map(10, uniform, gen, dilation_at=4))[0] > g["sigma"][1, 0] + 0.3


def test_bad_depths_are_a_config_error():
    with pytest.raises(ConfigError):
        run(RunSpec("receptive_field", "", config={"experiment": "erf_growth", "depths": "5"}))
    with pytest.raises(ConfigError):
        run(RunSpec("receptive_field", "", config={"experiment": "model"}))


# ---- the toy card through the runner, and the page (hooks, state, round trip: tests/analyzers/test_conformance_all.py)

def test_the_toy_card_gives_rf_8_and_a_bad_layer_is_a_config_error(toy_card):
    r = run(RunSpec("receptive_field", "toy_cnn.test", "digits:0,5", {"layer": "features.3", "n_images": "4"},
                    device="cpu"))
    assert r.metrics["rf_size"] == 8 and r.passed  # 3, pool 2 (r 4 j 2), 3 -> 8
    with pytest.raises(ConfigError):
        run(RunSpec("receptive_field", "toy_cnn.test", "digits:0", {"layer": "nope"}, device="cpu"))
    assert len(r.figures()) >= 6


def test_the_page_opens_without_exception():
    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parents[3] / "workbench" / "app.py")
    at = AppTest.from_file(app, default_timeout=120)
    at.run()
    at.switch_page("../pages/receptive_field.py")
    t0 = time.time()
    at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert any("483" in m.value for m in at.markdown) and time.time() - t0 < 120
    # the growth experiment runs as a job from the page and renders its figures
    at.text_input(key="receptive_field.growth.depths").set_value("2,4,8").run()
    next(b for b in at.button if b.label == "Run the growth experiment").click().run()
    deadline = time.time() + 90
    while not at.get("plotly_chart") and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert at.get("plotly_chart") and not at.exception


def test_erf_mass_outside_the_theoretical_box_is_zero_and_the_check_can_fail():
    from analyzers.receptive_field.analyzer import mass_outside

    r = run(RunSpec("receptive_field", "torchvision.resnet18", config={"layer": "layer2", "n_images": "2",
                                                                       "probe": "false"}, device="cpu"))
    check = next(c for c in r.checks if c.name == "erf_inside_theoretical_rf")
    assert check.passed and r.metrics["erf_mass_outside_trf"] <= 1e-6 and r.metrics["rf_size"] == 99
    # control: a box one jump too small on every side leaves mass outside, so the check would fail
    lo, hi = r.arrays["trf_box_lo"], r.arrays["trf_box_hi"]
    assert mass_outside(r.arrays["erf_map"], lo + 8, hi - 8) > 1e-3
