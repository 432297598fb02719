"""The methods written by hand for speed (issue 21: Saliency, Input x Gradient, Grad-CAM, IG's batching) equal
captum's own classes on the same float64 inputs, target given and target predicted; the reference tests
(test_attribution_reference.py) compare them with literal re-implementations, this with the library they replace."""

from __future__ import annotations

import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
from test_attribution_reference import batch, setup, smooth_net

from analyzers.attribution.methods import attribute


def _captum(method: str, model, x, t, n_steps: int):
    if method == "saliency":
        return Saliency(model).attribute(x, target=t, abs=True)
    if method == "input_x_gradient":
        return InputXGradient(model).attribute(x, target=t)
    if method == "integrated_gradients":
        return IntegratedGradients(model).attribute(x, torch.zeros_like(x), target=t, n_steps=n_steps)
    cam = LayerGradCam(model, model.conv2).attribute(x, target=t, relu_attributions=True)  # Selvaraju: ReLU
    return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")


CASES = [(m, p) for m in ("saliency", "input_x_gradient", "grad_cam") for p in (False, True)]
CASES.append(("integrated_gradients", False))  # IG is given its target (its forwards are not at the input)


@pytest.mark.parametrize(("method", "predicted"), CASES)
def test_hand_written_methods_equal_captum(method, predicted):
    model = smooth_net()
    x, t = batch()
    if predicted:
        t = model(x).argmax(1)
    s = setup(x, None if predicted else t, n_steps=24)
    ours = attribute(method, model, model.conv2, s)
    theirs = _captum(method, model, x.clone().requires_grad_(True), t, 24).detach().sum(1)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
