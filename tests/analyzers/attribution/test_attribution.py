"""Attribution sanity tests that can fail: IG completeness, randomization, no hooks left."""

import numpy as np
import pytest

from workbench.core.errors import ConfigError
from workbench.runtime import RunSpec, run

ALL = "integrated_gradients,saliency,input_x_gradient,grad_cam,occlusion"


def test_every_method_runs(toy_card):
    r = run(RunSpec("attribution", "toy_cnn.test", "digits:0,5", {"method": ALL}, device="cpu"))
    for m in ALL.split(","):
        a = r.arrays[f"attr_{m}"]
        assert a.shape == (2, 16, 16) and np.isfinite(a).all() and np.abs(a).sum() > 0
    assert {c.name for c in r.checks} >= {"ig_completeness", "randomization_saliency", "finite_values"}


def test_a_bad_gradcam_layer_or_target_is_a_config_error(toy_card):
    with pytest.raises(ConfigError):
        run(RunSpec("attribution", "toy_cnn.test", "digits:0", {"method": "grad_cam", "gradcam_layer": "nope"}))
    with pytest.raises(ConfigError):
        run(RunSpec("attribution", "toy_cnn.test", "digits:0", {"target": "7"}))


def test_gradcam_follows_the_explained_class_on_a_planted_model():
    """Planted ground truth: channel 0 sees positive input, channel 1 negative input; class k sums
    channel k. A positive blob top-left and a negative blob bottom-right: Grad-CAM for class 0 must sit
    top-left, for class 1 bottom-right."""
    import torch

    from analyzers.attribution.analyzer import AttributionConfig, Setup, _attribute

    class TwoChannels(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 1, bias=False)
            with torch.no_grad():
                self.conv.weight[:] = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)

        def forward(self, x):
            return torch.relu(self.conv(x)).sum((2, 3))

    model = TwoChannels()
    x = torch.zeros(2, 1, 16, 16)
    x[:, :, :4, :4], x[:, :, 12:, 12:] = 1.0, -1.0
    setup = Setup(x, torch.tensor([0, 1]), torch.zeros_like(x), AttributionConfig(), 2, 1)
    cam = _attribute("grad_cam", model, model.conv, setup)
    assert cam[0, :4, :4].sum() > 0.95 * cam[0].sum() > 0
    assert cam[1, 12:, 12:].sum() > 0.95 * cam[1].sum() > 0


@pytest.mark.zoo("digits_vgg.sk")
def test_ig_completeness_under_one_percent_on_digits_vgg():
    r = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:8",
                    {"method": "integrated_gradients", "n_steps": "64", "sanity_check": "false"}, device="cpu"))
    assert r.metrics["completeness_gap"] < 0.01
    # and it is a real measurement: too few steps, with doubling switched off, breaks completeness
    coarse = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:8",
                         {"method": "integrated_gradients", "n_steps": "4", "ig_max_steps": "4",
                          "sanity_check": "false"}, device="cpu"))
    assert coarse.metrics["completeness_gap"] > max(r.metrics["completeness_gap"], 0.01)
    assert not next(c for c in coarse.checks if c.name == "ig_completeness").passed
    # with doubling on, IG starts at 4 steps and doubles until the gap is under 1%, and says so
    grown = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:8",
                        {"method": "integrated_gradients", "n_steps": "4", "sanity_check": "false"}, device="cpu"))
    assert grown.metrics["completeness_gap"] < 0.01 < grown.info["ig_step_schedule"]["4"][1]
    assert 4 < grown.metrics["ig_steps_max"] <= 512 and "doubled from 4" in next(
        c for c in grown.checks if c.name == "ig_completeness").message


@pytest.mark.zoo("digits_vgg.sk")
def test_randomization_drops_rank_correlation_below_half():
    r = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:8",
                    {"method": "integrated_gradients,grad_cam", "n_steps": "32"}, device="cpu"))
    for m in ("integrated_gradients", "grad_cam"):
        assert r.metrics[f"sanity_rank_corr_{m}"] < 0.5
    # control: re-initializing no layer leaves the model as it was, so the check must fail
    same = run(RunSpec("attribution", "digits_vgg.sk", "digits:test:2",
                       {"method": "grad_cam", "randomize_layers": "0"}, device="cpu"))
    assert same.metrics["sanity_rank_corr_grad_cam"] > 0.99
    assert not next(c for c in same.checks if c.name == "randomization_grad_cam").passed


def _forward_batches(config: dict, data: str) -> list[int]:
    """The batch size of every forward call the attribution analyzer makes on the toy CNN (called directly, as
    `make bench` does: the runner's own calls are not counted)."""
    from workbench.core.analyzer import get_analyzer
    from workbench.core.config import from_dict
    from workbench.runtime import RunContext, load_model, make_batch

    handle = load_model("toy_cnn.test", "cpu")
    batch = make_batch(handle.card, data, "cpu")
    sizes: list[int] = []
    hook = handle.module.register_forward_pre_hook(lambda m, args: sizes.append(int(args[0].shape[0])))
    try:
        cls = get_analyzer("attribution")
        cls().run(handle, batch, from_dict(cls.Config, config), RunContext(device="cpu", batch_size=8))
    finally:
        hook.remove()
    return sizes


def test_the_prediction_is_read_from_the_explanations_own_forward(toy_card):
    """Issue 21: Grad-CAM, Saliency and Input x Gradient name the class from their own forward (no forward of
    its own for the probabilities), and IG at batch 1 runs its 64 path steps in one call: the class (1 row),
    the path (64 rows), f(baseline) for the completeness gap (1 row; f(x) is the first forward's)."""
    assert _forward_batches({"method": "grad_cam", "sanity_check": False}, "digits:0,5") == [2]
    assert _forward_batches({"method": "saliency,input_x_gradient", "sanity_check": False}, "digits:0,5") == [2, 2]
    ig = {"method": "integrated_gradients", "n_steps": 64, "ig_max_steps": 64, "sanity_check": False}
    assert _forward_batches(ig, "digits:0") == [1, 64, 1]
