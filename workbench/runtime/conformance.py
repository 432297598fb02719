"""The runtime's side of the conformance suite (:func:`workbench.core.conformance.check_analyzer`).

:class:`RuntimeHarness` loads private copies of zoo models through the runner's cache, builds batches
with the card's preprocessing, seeds and runs analyzers under the runtime's gate and stamps provenance
with the runner's own code, so a conformance run sees what a ``workbench run`` sees.

    from workbench.core.conformance import check_analyzer
    from workbench.runtime.conformance import RuntimeHarness

    report = check_analyzer(MyAnalyzer, RuntimeHarness(device="cpu"))
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

from workbench.core.analyzer import ModelHandle
from workbench.core.cards import get_card
from workbench.core.errors import UnsupportedModelError
from workbench.core.result import Result
from workbench.runtime import runner
from workbench.runtime.context import RunContext
from workbench.runtime.device import pick_device
from workbench.runtime.gate import GATE

#: small trained zoo models (kind, task, model id, data id or None for the card's default), first match wins
SMOKE_MODELS = (
    ("image2d", "classification", "digits_vgg.sk", "digits:test:16"),
    ("signal1d", "classification", "mnist1d_cnn.default", "mnist1d:test:16"),
    ("eeg", "classification", "eeg_compact.synth", None),
    ("vector", "classification", "toy_mlp.moons", "moons:test:16"),
    ("image2d", "image2image", "sr_cnn.x2", None),
)
#: seed offset of the suite's weight randomization, apart from the analyzers' own controls (7919 * k)
RANDOMIZE_SEED = 104729


@dataclasses.dataclass
class RuntimeHarness:
    """Framework services for :func:`workbench.core.conformance.check_analyzer` (see its Harness protocol)."""

    device: str = "cpu"
    always_versioned: tuple[str, ...] = runner._VERSIONED
    _started: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.device = pick_device(self.device)

    def smoke_inputs(self, cls: type) -> tuple[str, str | None]:
        for kind, task, model_id, data_id in SMOKE_MODELS:
            if kind in cls.supports and task in cls.tasks:
                return model_id, data_id
        raise UnsupportedModelError(f"no smoke model for {cls.name} (kinds {', '.join(cls.supports)}, "
                                    f"tasks {', '.join(cls.tasks)})", "pass model= to check_analyzer")

    def load(self, model_id: str) -> ModelHandle:
        card = get_card(model_id)
        cached = runner._load(card, self.device)
        with cached.lock:  # the shared module is only read while copying
            module = copy.deepcopy(cached.module)
        return ModelHandle(card, module, self.device, cached.sha256)

    def randomized(self, handle: ModelHandle, seed: int) -> ModelHandle:
        """Every layer with its own parameters re-initialized (BatchNorm statistics reset too), seeded apart
        from the global stream, which is left as it was."""
        import torch

        module = copy.deepcopy(handle.module)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOMIZE_SEED + seed)
            for m in module.modules():
                if callable(getattr(m, "reset_parameters", None)) and any(True for _ in m.parameters(recurse=False)):
                    m.reset_parameters()
        return ModelHandle(handle.card, module.eval(), handle.device, handle.weights_sha256)

    def batch(self, handle: ModelHandle, data_id: str | None) -> Any:
        return runner.make_batch(handle.card, data_id or handle.card.default_data, self.device)

    def context(self, seed: int) -> RunContext:
        return RunContext(device=self.device, seed=seed)

    def execute(self, cls: type, handle: ModelHandle | None, batch: Any, config: Any, ctx: RunContext) -> Result:
        self._started = {id(ctx): time.perf_counter()}  # stamp() follows the run it stamps
        runner._seed(ctx.seed)
        with GATE.exclusive() if cls.exclusive else GATE.shared():
            return cls().run(handle, batch, config, ctx)

    def stamp(self, result: Result, cls: type, config: Any, handle: ModelHandle | None, batch: Any,
              ctx: RunContext) -> Result:
        t0 = self._started.pop(id(ctx), time.perf_counter())
        if handle is None:
            data_id = batch.data_id if batch is not None else str(getattr(config, "dataset", "") or "")
            return runner._stamp(result, cls, config, None, data_id, "", ctx, ctx.seed, t0)
        data_id = batch.data_id if batch is not None else ""
        return runner._stamp(result, cls, config, handle.card, data_id, handle.weights_sha256, ctx, ctx.seed, t0)
