"""Bad input from a notebook: one typed line naming the problem and the fix; nothing of the user's changed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import workbench as wb
from tests.api.conftest import assert_unchanged, snapshot
from workbench.core.errors import ComputeError, DataError, UnsupportedModelError, WorkbenchError


class MLP(nn.Module):
    """Flatten + Linear: takes 8x8 images, has no conv layer."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class InPlaceInput(nn.Module):
    """Shifts its input in place: autograd refuses to differentiate through that."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 3)

    def forward(self, x):
        x.sub_(0.5)
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def _one_line(excinfo, *words: str) -> str:
    line = excinfo.value.one_line()
    assert "\n" not in line and "hint:" in line, line
    assert all(w in line for w in words), line
    return line


def test_forward_that_fails_on_the_data(digits_batch):
    model = MLP()
    before = snapshot(model)
    with pytest.raises(UnsupportedModelError) as e:
        wb.run("lrp", model=model, data=torch.rand(2, 1, 9, 9))
    _one_line(e, "forward failed", "(1, 1, 9, 9)", "mat1 and mat2")
    assert_unchanged(model, before)


def test_data_shape_that_matches_no_kind():
    model = MLP()
    before = snapshot(model)
    with pytest.raises(DataError) as e:
        wb.run("attribution", model=model, data=torch.rand(2, 1, 8, 8, 2))
    _one_line(e, "(2, 1, 8, 8, 2)", "matches no input")
    assert_unchanged(model, before)


def test_grad_cam_on_a_model_without_conv_layers(digits_batch):
    model = MLP()
    before = snapshot(model)
    with pytest.raises(UnsupportedModelError) as e:
        wb.run("attribution", model=model, data=digits_batch[0][:2], method="grad_cam")
    _one_line(e, "no Conv2d layer for Grad-CAM", "gradcam_layer")
    assert_unchanged(model, before)
    r = wb.run("attribution", model=model, data=digits_batch[0][:2], method="saliency", sanity_check=False)
    assert r.arrays  # the fix the line names works


def test_in_place_op_that_breaks_gradients():
    model = InPlaceInput()
    x = torch.rand(2, 1, 8, 8)
    x0 = x.clone()
    before = snapshot(model)
    with pytest.raises(ComputeError) as e:
        wb.run("attribution", model=model, data=x, method="saliency", sanity_check=False)
    _one_line(e, "in place", "x = x + y")
    assert_unchanged(model, before)
    assert torch.equal(x, x0)  # the user's data is not shifted either


def test_module_spread_over_devices_or_not_materialized():
    """On a CPU machine the meta device stands in for a second device."""
    model = MLP()
    model.net[1].bias = nn.Parameter(torch.empty(10, device="meta"))
    with pytest.raises(UnsupportedModelError) as e:
        wb.run("lrp", model=model, data=torch.rand(2, 1, 8, 8))
    _one_line(e, "several devices", "cpu, meta", "model.to(")
    with pytest.raises(UnsupportedModelError) as e:
        wb.run("lrp", model=MLP().to("meta"), data=torch.rand(2, 1, 8, 8))
    _one_line(e, "meta device")


def test_data_on_another_device_than_the_model_is_moved_not_refused(user_cnn, digits_batch):
    """The data follows the model: a tensor from anywhere is read to numpy and fed on the model's device."""
    r = wb.run("attribution", model=user_cnn, data=digits_batch[0][:2].numpy(), method="saliency",
               sanity_check=False)
    assert r.provenance.device == "cpu"


def test_bad_arrays_are_refused_like_bad_files(user_cnn):
    for bad, word in [(torch.full((2, 1, 8, 8), float("nan")), "NaN"), (torch.zeros(0, 1, 8, 8), "empty"),
                      (torch.zeros(2, 1, 8, 8, dtype=torch.complex64), "complex64")]:
        with pytest.raises(DataError) as e:
            wb.run("lrp", model=user_cnn, data=bad)
        _one_line(e, word)


def test_wrong_class_names_and_normalize(user_cnn, digits_batch):
    with pytest.raises(WorkbenchError) as e:
        wb.run("lrp", model=user_cnn, data=digits_batch[0][:2], classes=["a", "b"])
    _one_line(e, "2 class names", "10 outputs")
    with pytest.raises(DataError) as e:
        wb.run("lrp", model=user_cnn, data=digits_batch[0][:2], normalize=((0.5, 0.5), (0.2, 0.2)))
    _one_line(e, "normalize")
