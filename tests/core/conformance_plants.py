"""Throwaway analyzers for tests/core/test_conformance.py: one clean, and one per planted defect.

They are registered only inside those tests. torch is imported inside functions only, so that the result
classes here import in the conformance suite's torch-free interpreter (except the one planted to need it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.core.analyzer import Analyzer
from workbench.core.config import option
from workbench.core.errors import Cancelled
from workbench.core.result import Check, Result

CHUNK = 4  # inputs per forward call: several calls and progress steps per run


@dataclass(frozen=True)
class PlantConfig:
    chunk: int = option(CHUNK, "inputs per forward call", min=1, max=64)


@dataclass(frozen=True)
class BadDefaultConfig:
    chunk: int = option(100, "inputs per forward call; the default is above the maximum", min=1, max=64)


class PlantResult(Result):
    def figures(self) -> list:
        import plotly.graph_objects as go

        return [go.Figure(go.Bar(y=self.arrays["logit_mean"]))]


class LossyResult(PlantResult):
    """Planted defect: ``save`` drops the ``probs`` array."""

    def save(self, directory):
        full = self.arrays
        self.arrays = {k: v for k, v in full.items() if k != "probs"}
        try:
            return super().save(directory)
        finally:
            self.arrays = full


class TorchFigureResult(PlantResult):
    """Planted defect: the figures recompute with torch instead of reading stored arrays."""

    def figures(self) -> list:
        import plotly.graph_objects as go
        import torch

        return [go.Figure(go.Bar(y=torch.softmax(torch.as_tensor(self.arrays["logit_mean"]), 0).numpy()))]


class Clean(Analyzer):
    """Accuracy of the model on the labelled batch, in chunks with progress; the check depends on weights."""

    name = "conformance_clean"
    Config = PlantConfig
    result_class = PlantResult
    supports = ("image2d",)
    libraries = ("scipy",)  # UsesScipy, in this module, computes with it
    headline_check = "accuracy_above_chance"

    def run(self, model, data, config, ctx):
        import torch

        logits = []
        for i in range(0, data.x.shape[0], config.chunk):
            ctx.progress(i / data.x.shape[0], "forward")
            logits.append(self.forward(model.module, data.x[i:i + config.chunk]))
        logits = torch.cat(logits).detach()
        acc = float((logits.argmax(1).cpu().numpy() == np.array(data.labels)).mean())
        checks = [Check("accuracy_above_chance", acc > 0.5, acc, 0.5, "top-1 accuracy on the batch"),
                  Check("logits_finite", bool(torch.isfinite(logits).all()), None, None, "no NaN/inf logit")]
        return self.result_class(self.name, metrics={"accuracy": acc}, checks=checks,
                                 arrays={"logit_mean": logits.mean(0).cpu().numpy(),
                                         "probs": torch.softmax(logits, 1).cpu().numpy()})

    def forward(self, module, x):
        import torch

        with torch.no_grad():
            return module(x)


class HookLeak(Clean):
    name = "conformance_hook_leak"

    def forward(self, module, x):
        module.register_forward_hook(lambda *args: None)  # never removed
        return super().forward(module, x)


class ParamChange(Clean):
    name = "conformance_param_change"

    def forward(self, module, x):
        import torch

        with torch.no_grad():
            next(module.parameters()).mul_(1.0 + 1e-6)  # a tiny in-place drift of the first weight
        return super().forward(module, x)


class ModeChange(Clean):
    name = "conformance_mode_change"

    def forward(self, module, x):
        out = super().forward(module, x)
        module.train()  # left in training mode
        return out


class LeakOnError(Clean):
    """Removes its hook after a successful run only (no ``finally``): clean runs pass, failures leak."""

    name = "conformance_leak_on_error"

    def run(self, model, data, config, ctx):
        handle = model.module.register_forward_hook(lambda *args: None)
        result = super().run(model, data, config, ctx)
        handle.remove()
        return result


class SwallowsCancel(Clean):
    name = "conformance_swallows_cancel"

    def run(self, model, data, config, ctx):
        try:
            return super().run(model, data, config, ctx)
        except Cancelled:  # planted defect: a cancelled job comes back as a finished one
            return self.result_class(self.name, metrics={"accuracy": 0.0})


class Lossy(Clean):
    name = "conformance_lossy"
    result_class = LossyResult


class TorchFigures(Clean):
    name = "conformance_torch_figures"
    result_class = TorchFigureResult


class HeadlineSurvives(Clean):
    """Names a headline check that any weights pass: the randomization control cannot break it."""

    name = "conformance_headline_survives"
    headline_check = "logits_finite"


class BadDefault(Clean):
    name = "conformance_bad_default"
    Config = BadDefaultConfig


class NoHeadline(Clean):
    name = "conformance_no_headline"
    headline_check = None


class UsesScipy(Clean):
    """Planted defect: computes with scipy but does not declare it in ``libraries``."""

    name = "conformance_uses_scipy"
    libraries = ()

    def run(self, model, data, config, ctx):
        from scipy.special import softmax

        result = super().run(model, data, config, ctx)
        result.set_array("probs", softmax(result.arrays["probs"], axis=1))
        return result
