"""The EEG card: Cui et al.'s interpretable CNN (structure, equivalence to the paper's layers), its
preprocessing, training with frozen BatchNorm statistics, and the trained zoo weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.architectures import EEGInterpretableCNN
from models.eeg_fit import fit, freeze_batch_statistics
from models.preprocess import EEG_SCALE_UV, eeg_batch, eeg_preprocess
from workbench.core.cards import get_card
from workbench.core.errors import DataError
from workbench.data import get_samples
from workbench.data.eeg_synth import CHANNELS


def test_card_describes_the_eeg_model():
    card = get_card("eeg_compact.synth")
    assert card.kind == "eeg" and card.input_shape == (30, 384) and card.sampling_rate == 128.0
    assert card.class_names == ("alert", "drowsy") and card.dataset == "eeg_synth.drowsy"
    assert tuple(card.extra["channels"]) == CHANNELS and "Cui" in card.citation
    x, y = card.extra["training_data"]("test")
    assert x.shape[1:] == (30, 384) and x.dtype == np.float32 and set(y.tolist()) == {0, 1}
    s = get_samples(card.default_data)[0]
    assert card.preprocess(s).shape == (30, 384) and card.display(s).shape == (30, 384)


def test_parameter_count_is_the_papers_2706():
    assert sum(p.numel() for p in EEGInterpretableCNN().parameters()) == 2706


def test_layers_equal_the_papers_conv2d_layout():
    """The paper writes the network with Conv2d on a 1 x 30 x 384 image and a grouped depthwise conv with
    two kernels per group; our Conv1d + channel copy + depthwise conv must give the same numbers."""
    torch.manual_seed(0)
    ours = EEGInterpretableCNN().double().eval()
    with torch.no_grad():
        ours.bn.running_mean.uniform_(0, 1)
        ours.bn.running_var.uniform_(0.5, 2)
    pw = nn.Conv2d(1, 16, (30, 1)).double()
    dw = nn.Conv2d(16, 32, (1, 64), groups=16).double()
    with torch.no_grad():
        pw.weight.copy_(ours.pointwise.weight.view(16, 1, 30, 1))
        pw.bias.copy_(ours.pointwise.bias)
        dw.weight.copy_(ours.depthwise.weight.view(32, 1, 1, 64))
        dw.bias.copy_(ours.depthwise.bias)
    x = torch.randn(3, 30, 384, dtype=torch.float64)
    z = dw(pw(x[:, None]))[:, :, 0]  # (3, 32, 321)
    a = ours.bn(torch.relu(z))
    paper = ours.fc(a.mean(2))
    assert torch.allclose(ours(x), paper, atol=1e-10)


def test_preprocessing_removes_channel_means_and_scales():
    w = np.random.default_rng(0).standard_normal((2, 30, 384)).astype(np.float32) * 10 + 50
    out = eeg_batch(w)
    assert np.allclose(out.mean(-1), 0, atol=1e-5)
    assert np.allclose(out * EEG_SCALE_UV, w - w.mean(-1, keepdims=True), atol=1e-4)
    with pytest.raises(DataError):
        eeg_batch(np.zeros((2, 29, 384)))
    from workbench.core.sample import Sample

    with pytest.raises(DataError, match="EEG models take"):
        eeg_preprocess(Sample("x", "signal", np.zeros((1, 40), np.float32)))


def test_frozen_statistics_are_the_training_population_and_make_windows_independent():
    torch.manual_seed(1)
    model = EEGInterpretableCNN()
    x = torch.randn(40, 30, 384)
    freeze_batch_statistics(model, x)
    a = torch.relu(model.depthwise(model.expand(model.pointwise(x))))
    assert torch.allclose(model.bn.running_mean, a.mean((0, 2)), atol=1e-5)
    assert torch.allclose(model.bn.running_var, a.var((0, 2), unbiased=False), rtol=1e-4)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(len(x))])
    assert torch.allclose(together, alone, atol=1e-5)


def test_short_training_learns_the_synthetic_task_and_leaves_global_rng_alone():
    card = get_card("eeg_compact.synth")
    xtr, ytr = card.extra["training_data"]("train")
    xte, yte = card.extra["training_data"]("test")
    state = torch.random.get_rng_state()
    model = fit(xtr, ytr, seed=0, epochs=3, lr=3e-3)
    assert torch.equal(state, torch.random.get_rng_state())
    with torch.no_grad():
        acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    assert acc >= 0.85 and not model.training


@pytest.mark.zoo("eeg_compact.synth")
def test_zoo_weights_reach_the_recipe_target():
    from workbench.runtime import load_model

    handle = load_model("eeg_compact.synth", "cpu")
    x, y = handle.card.extra["training_data"]("test")
    with torch.no_grad():
        pred = handle.module(torch.from_numpy(x)).argmax(1).numpy()
    assert (pred == y).mean() >= handle.card.extra["target_accuracy"]
    assert handle.card.status(handle.card)["params"] == 2706
