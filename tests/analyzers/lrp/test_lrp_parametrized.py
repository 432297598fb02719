"""EEGNet's spatial conv is parametrized (braindecode's max-norm, torch.nn.utils.parametrize): the lrp analyzer
bakes it into a plain conv on its private copy (analyzers/_shared/canonizers.bake_parametrizations), so the
BatchNorm after it (bnorm_1) is merged and the canonized check passes; the shared model keeps its
parametrization."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from analyzers._shared.canonizers import bake_parametrizations
from workbench.runtime import RunSpec, load_model, run


class _Double(nn.Module):
    def forward(self, w):
        return 2 * w


def test_baking_keeps_the_forward_and_leaves_the_original_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.Linear(4, 2))
    parametrize.register_parametrization(net[0], "weight", _Double())
    parametrize.register_parametrization(net[2], "weight", _Double())
    x = torch.randn(5, 2, 6)
    private = copy.deepcopy(net).eval()
    assert bake_parametrizations(private) == ["0", "2"]
    assert not any(parametrize.is_parametrized(m) for m in private.modules())
    assert torch.equal(private(x), net.eval()(x))
    assert parametrize.is_parametrized(net[0]) and parametrize.is_parametrized(net[2])
    assert torch.equal(net[0].weight, 2 * net[0].parametrizations.weight.original)


@pytest.mark.zoo("braindecode.eegnet")
def test_eegnet_is_canonized_and_the_shared_model_keeps_its_parametrization():
    r = run(RunSpec("lrp", "braindecode.eegnet", "eeg_synth.drowsy:test:0-3", {}, device="cpu"))
    checks = {c.name: c for c in r.checks}
    for name in ("canonized", "ledger_closes", "canonization_keeps_output"):
        assert checks[name].passed, (name, checks[name].message)
    assert r.info["parametrizations_baked"] == ["conv_spatial"]
    assert not r.info["problems"] and r.info["no_map_reason"] == ""
    shared = load_model("braindecode.eegnet", "cpu").module
    assert parametrize.is_parametrized(dict(shared.named_modules())["conv_spatial"])


class _UntracedResidual(nn.Module):
    """torch.fx cannot trace it (a len() of a traced value), and its residual addition is left without a rule."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 1, 3, padding=1), nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = h + x if len(x) else h
        return self.fc(h.flatten(1))


def test_an_untraced_model_whose_ledger_leaks_is_not_called_canonized():
    import workbench as wb

    torch.manual_seed(0)
    x = torch.rand(3, 1, 4, 4).numpy()
    r = wb.run("lrp", model=_UntracedResidual().eval(), data=x, classes=("a", "b", "c"), device="cpu",
               sanity_check=False)
    checks = {c.name: c for c in r.checks}
    assert not checks["ledger_closes"].passed
    assert not checks["canonized"].passed and "could not be traced" in checks["canonized"].message
