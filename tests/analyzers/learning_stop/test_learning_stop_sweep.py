"""A learning-stop study (models x seeds) on the sweep: through the local process pool with 2 workers each
cell equals the single call bit for bit on the CPU (measured step times aside), the aggregate has the
stop epoch's mean and spread per model, and the runs overlay from the cells."""

from __future__ import annotations

import numpy as np

from analyzers.learning_stop.result import LearningStopResult
from tests.sweep.sweep_helpers import same_result, single_call
from workbench.core.result import Result
from workbench.sweep.engine import RunOptions, run_sweep
from workbench.sweep.grid import SweepSpec

MODELS = ["digits_vgg.sk", "mnist1d_cnn.default"]
SMOKE = {"max_epochs": 3, "warmup": 0, "window": 2, "overhead_pairs": 2}
#: what a run measures with a clock: never bit-reproducible
TIMED_ARRAYS = ("overhead_times", "epoch_time")
TIMED_METRICS = ("monitor_overhead_pct",)


def _strip(r: Result) -> Result:
    for name in TIMED_ARRAYS:
        r.arrays.pop(name, None)
    r.checks = [c for c in r.checks if c.name != "monitor_overhead"]
    return r


def test_study_over_models_and_seeds_on_two_workers_equals_single_calls(tmp_path):
    spec = SweepSpec("learning_stop", MODELS, [None], {}, dict(SMOKE), [0, 1], device="cpu")
    study = run_sweep(spec, tmp_path, RunOptions("local", 2))
    assert study.info["run"]["executor"] == "local" and study.metrics["cells_done"] == 4
    cells = {(c["model"], c["seed"]): Result.load(tmp_path / "cells" / c["key"]) for c in study.info["cells"]}
    for model, seed in [(MODELS[0], 1), (MODELS[1], 0)]:
        whole = single_call("learning_stop", model, None, SMOKE, seed=seed)
        assert same_result(_strip(whole), _strip(cells[(model, seed)]), TIMED_METRICS) == [], (model, seed)
    names = study.info["metric_names"]
    j, groups = names.index("stop_epoch"), study.info["groups"]
    assert [g["model"] for g in groups] == MODELS
    for g, model in enumerate(MODELS):
        runs = [cells[(model, s)].metrics["stop_epoch"] for s in (0, 1)]
        assert study.arrays["mean"][g, j] == np.mean(runs) and study.arrays["count"][g, j] == 2
    overlay = LearningStopResult.overlay([cells[k] for k in sorted(cells)])
    assert overlay.metrics["runs"] == 4 and len(overlay.figures()) == 2
