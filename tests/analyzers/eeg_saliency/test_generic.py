"""EEG saliency beyond Cui et al.'s layout (issue 19) and its quality panel (issue 17): Grad-CAM / LRP / IG on any
EEG network checked against literal references, braindecode's EEGNet judged against the planted bursts, a real
recording without truth judged by the rank-correlation control (and a control that must break it), MNE's topomap
orientation, and the quality panel on eeg_compact.synth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import workbench as wb
from analyzers.eeg_saliency import generic as gm
from analyzers.eeg_saliency import topo
from analyzers.eeg_saliency.texts import NO_TRUTH_TEXT
from workbench.core.errors import ConfigError
from workbench.runtime import RunSpec, run

EMOTIV = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")


def _check(r, name):
    return next(c for c in r.checks if c.name == name)


def _net(c: int = 6, bn: bool = True) -> nn.Module:
    """A small EEGNet-like ReLU net on (N, c, 64): temporal conv, BatchNorm, spatial conv, pool, dense."""
    torch.manual_seed(1)
    layers = [nn.Unflatten(1, (1, c)), nn.Conv2d(1, 4, (1, 9), padding=(0, 4))]
    layers += [nn.BatchNorm2d(4)] if bn else []
    layers += [nn.ReLU(), nn.Conv2d(4, 8, (c, 1)), nn.ReLU(), nn.AvgPool2d((1, 8)), nn.Flatten(), nn.Linear(64, 3)]
    net = nn.Sequential(*layers).double().eval()
    if bn:  # non-trivial population statistics, so an inexact BatchNorm merge would show
        net[2].running_mean.uniform_(-0.5, 0.5)
        net[2].running_var.uniform_(0.5, 2.0)
        net[2].weight.data.uniform_(0.5, 1.5)
        net[2].bias.data.uniform_(-0.2, 0.2)
    return net


def test_lrp0_equals_gradient_times_input_of_the_contrast_through_merged_batchnorm():
    """LRP-0 on a ReLU net is exactly Gradient x Input (Ancona et al. 2018), BatchNorm merged exactly or not at all;
    the explained output is the target logit minus the mean of the others."""
    net, x = _net(), torch.randn(3, 6, 64, dtype=torch.float64)
    target = net(x).argmax(1)
    coef = gm.coefficients(net(x), target, contrast=True)
    rel, problems = gm.lrp(net, x, coef, epsilon=0.0)
    xin = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(gm.explained(net, xin, coef).sum(), xin)
    assert problems == []
    torch.testing.assert_close(rel.double(), (x * g), rtol=1e-4, atol=1e-5)  # rel is float32
    assert coef[0, target[0]] == 1 and coef.sum(1).abs().max() < 1e-12


def test_ig_completeness_on_the_explained_contrast():
    net, x = _net(), torch.randn(4, 6, 64, dtype=torch.float64)
    target = net(x).argmax(1)
    coef = gm.coefficients(net(x), target, contrast=True)
    ig = x * gm.ig_gradients(net, x, coef, 64)
    diff = gm.explained(net, x, coef) - gm.explained(net, torch.zeros_like(x), coef)
    torch.testing.assert_close(ig.sum((1, 2)).double(), diff, rtol=2e-2, atol=1e-3)  # ReLU kinks: ~1% at 64 steps


def test_gradcam_equals_a_literal_computation_and_keeps_channels_where_the_layer_has_them():
    net, x = _net(bn=False), torch.randn(2, 6, 64, dtype=torch.float64)
    target = net(x).argmax(1)
    coef = gm.coefficients(net(x), target, contrast=False)
    assert gm.cam_layer(net, x) == "3"  # the deepest conv with a time axis: the spatial conv (8, 1, 64)
    cam, real = gm.gradcam(net, x, coef, "1")  # the temporal conv keeps the 6 channels: (4, 6, 64)
    a = net[1](net[0](x))
    a.retain_grad()
    out = net[2:](a)
    out.gather(1, target[:, None]).sum().backward()
    want = torch.relu((a.grad.mean((2, 3), keepdim=True) * a).sum(1))  # (2, 6, 64), already at T
    assert real and torch.allclose(cam.double(), want, atol=1e-5)
    prof, real = gm.gradcam(net, x, coef, "3")
    assert not real and gm.channel_uniform(prof.numpy())


@pytest.mark.zoo("braindecode.eegnet")
def test_braindecode_eegnet_is_judged_against_the_planted_bursts():
    r = run(RunSpec("eeg_saliency", "braindecode.eegnet", "eeg_synth.drowsy:test:0-39", {"random_draws": "1"},
                    device="cpu"))
    assert r.info["layout"] == "generic" and r.info["cam_layer"] == "conv_separable_point"
    assert not r.info["cam_channels"] and "channel_relevance_cam" not in r.arrays  # a time profile: no topomap
    for name in ("lrp_mass_in_bursts", "ig_pointing_game", "lrp_randomization_drop", "saliency_mass_in_bursts"):
        _check(r, name)
    assert _check(r, "lrp_randomization_drop").passed and _check(r, "ig_randomization_drop").passed
    assert r.metrics["ig_completeness_gap"] < 0.05 and r.metrics["lrp_mass_in_bursts"] > 0.6
    assert not _check(r, "saliency_posterior_share").passed  # Grad-CAM after the spatial filter has no channels
    assert _check(r, "saliency_posterior_share").message.startswith("Grad-CAM:")
    assert "Grad-CAM at conv_separable_point" in r.summary() and "Grad-CAM (conv_separable_point)" in str(
        [f.layout.title.text for f in r.figures()])
    assert r.arrays["channel_relevance_lrp"][[27, 28, 29]].sum() > 3 / 30  # occipital channels above their share
    with pytest.raises(ConfigError, match="Cui"):  # the variant table and LOSO need Cui's layout
        run(RunSpec("eeg_saliency", "braindecode.eegnet", "eeg_synth.drowsy:test:0-3", {"variants": "true"},
                    device="cpu"))


def _eegnet14():
    from braindecode.models import EEGNet

    torch.manual_seed(0)
    return EEGNet(n_chans=14, n_outputs=2, n_times=384, sfreq=128.0).eval()


def test_a_real_recording_without_truth_is_judged_by_rank_correlation_and_a_null_control_breaks_it():
    from workbench.data import get_samples

    net = _eegnet14()
    x = np.stack([s.array for s in get_samples("emotiv:0-3")]).astype(np.float32)
    kw = {"data": (x - x.mean(-1, keepdims=True)) / 50.0, "device": "cpu", "channel_names": EMOTIV, "sfreq": 128.0,
          "random_draws": 1}
    r = wb.run("eeg_saliency", model=net, **kw)
    assert not r.info["has_truth"] and not any("mass_in_bursts" in c.name for c in r.checks)
    assert NO_TRUTH_TEXT in r.summary() and r.arrays["topo_xy"].shape == (14, 2)
    for m in ("", "lrp_", "ig_"):
        assert f"{m}randomization_rank_corr" in r.metrics
    assert _check(r, "randomization_rank_corr").passed  # Grad-CAM of an untrained net changes when re-drawn
    null = wb.run("eeg_saliency", model=net, randomize_layers=0, methods="cam,lrp", **kw)  # nothing re-drawn
    for name in ("randomization_rank_corr", "lrp_randomization_rank_corr"):
        assert not _check(null, name).passed and null.metrics[name] > 0.99


def test_mne_topomap_peaks_at_the_electrode_and_keeps_the_nose_up():
    values = np.zeros(len(EMOTIV))
    values[EMOTIV.index("O1")] = 1.0
    t = topo.topomap(values, EMOTIV)
    at = [float(t["grid"][np.abs(t["y"] - sy).argmin(), np.abs(t["x"] - sx).argmin()]) for sx, sy in t["sensors"]]
    assert int(np.argmax(at)) == EMOTIV.index("O1") and at[EMOTIV.index("O1")] > 0.5  # interpolates through O1
    o1 = t["sensors"][EMOTIV.index("O1")]
    assert o1[1] < 0 < t["sensors"][EMOTIV.index("AF3")][1]  # occipital at the back (bottom), frontal at the top
    assert np.isfinite(t["grid"]).all() and t["inside"].mean() > 0.5
    assert topo.has_positions(EMOTIV) and not topo.has_positions(("AF3", "nope"))


@pytest.mark.zoo("eeg_compact.synth")
def test_quality_panel_on_every_map_per_window_and_in_words():
    r = run(RunSpec("eeg_saliency", "eeg_compact.synth", "eeg_synth.drowsy:test:0-23",
                    {"random_draws": "1", "quality": "true", "quality_step": "0.1"}, device="cpu"))
    for m in ("cam", "lrp", "ig"):
        assert r.arrays[f"quality_deletion_{m}"].shape == (24, 11)
        assert r.arrays[f"quality_deletion_auc_{m}"].shape == (24,)
        _check(r, f"quality_beats_random_{m}")
        assert f"Quality panel, {'CAM variant' if m == 'cam' else 'LRP' if m == 'lrp' else 'Integrated'}" in r.summary()
    assert any("deletion and insertion" in f.layout.title.text for f in r.figures())
    plain = run(RunSpec("eeg_saliency", "eeg_compact.synth", "eeg_synth.drowsy:test:0-23",
                        {"random_draws": "1", "methods": "cam"}, device="cpu"))
    assert not any(k.startswith("quality_") for k in plain.arrays)  # off by default


def test_lrp_on_braindecode_eegnet_merges_every_batchnorm_and_leaves_the_model_untouched():
    """EEGNet's spatial conv is parametrized (max-norm): the BatchNorm after it merges only once the private copy
    holds a plain conv. With ELU swapped for ReLU, LRP-0 must then equal Gradient x Input; the given module keeps
    its parametrization, its state and its forward."""
    from models import eeg_braindecode as eb

    torch.manual_seed(0)
    net = eb.build("EEGNet").eval().double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    for m in list(net.modules()):
        for name, c in list(m.named_children()):
            if isinstance(c, nn.ELU):
                setattr(m, name, nn.ReLU())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 30, 384, dtype=torch.float64)
    coef = gm.coefficients(net(x), net(x).argmax(1), contrast=True)
    rel, problems = gm.lrp(net, x, coef, epsilon=0.0)
    assert not any("not merged" in p for p in problems) and "all 3 BatchNorm layers merged" in problems[0]
    xin = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(gm.explained(net, xin, coef).sum(), xin)
    ref = x * g
    assert float((rel.double() - ref).abs().max()) < 1e-3 * float(ref.abs().max())
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], v) for k, v in after.items())
    assert torch.nn.utils.parametrize.is_parametrized(net.conv_spatial) and net(x).shape == (2, 2)
