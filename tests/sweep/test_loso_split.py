"""Cui et al.'s leave-one-subject-out protocol split into one sweep cell per held-out subject: through the
local process pool with 2 workers the merged protocol equals the single call (loso.run_loso, which
eeg_saliency runs) bit for bit on the CPU; a cell may only call its analyzer's own functions."""

from __future__ import annotations

import numpy as np
import pytest
from sweep_helpers import same_result

from analyzers.eeg_saliency.loso_sweep import LOSO, protocol_findings
from workbench.core.errors import ConfigError
from workbench.sweep.engine import RunOptions
from workbench.sweep.grid import SweepSpec
from workbench.sweep.split import SplitOptions, run_split

CARD, DATA = "eeg_compact.synth", "eeg_synth.drowsy"
CONFIG = {"loso": True, "loso_epochs": 1, "loso_folds": 2}


def _single(seed: int) -> dict:
    """loso.run_loso (the protocol eeg_saliency runs) in a fresh process on 1 torch thread, as the cells run
    (see sweep_helpers.single_call for why not in the test process)."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json; from workbench.runtime.session import lookup_card; "
            "from analyzers.eeg_saliency.loso import LosoPlan, loso_data, run_loso; "
            f"card = lookup_card({CARD!r}); x, y, s = loso_data(card, {DATA!r}, None, []); "
            f"r = run_loso(card, x, y, s, LosoPlan(1, 0.0, 2, {seed}), lambda f, m: None); "
            "print(json.dumps({k: [v.dtype.str, v.tolist()] for k, v in r.items()}))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return {k: np.array(v, dtype=np.dtype(t)) for k, (t, v) in json.loads(done.stdout.splitlines()[-1]).items()}


def test_loso_folds_on_two_workers_equal_the_single_call(tmp_path):
    res = _single(seed=5)
    merged = run_split("eeg_saliency", CARD, DATA, CONFIG, 5, SplitOptions(RunOptions("local", 2), out=tmp_path),
                       hooks=LOSO)
    assert merged.info["split"]["executor"] == "local" and merged.info["split"]["computed"] == 2
    whole = protocol_findings(res).result(type(merged), "eeg_saliency")
    whole.checks = [c for c in merged.checks if c.name == "finite_values"]
    assert same_result(whole, merged) == []
    assert merged.arrays["loso_subjects"].tolist() == [1, 2] and merged.metrics["loso_folds"] == 2
    again = run_split("eeg_saliency", CARD, DATA, CONFIG, 5, SplitOptions(RunOptions("local", 1), out=tmp_path),
                      hooks=LOSO)
    assert again.info["split"]["computed"] == 0 and np.array_equal(again.arrays["loso_accuracy"], res["accuracy"])


def test_a_cell_calls_only_its_analyzers_own_functions(tmp_path):
    from workbench.sweep.engine import plan

    def spec(call):
        return SweepSpec("eeg_saliency", [CARD], [DATA], parts=[{"params": {"subject": 1}, "seed": 0, "call": call}])

    assert plan(spec("analyzers.eeg_saliency.loso_sweep:fold_cell"))[0][0].call.endswith(":fold_cell")
    for bad in ("os:system", "analyzers.lrp.analyzer:run", "analyzers.eeg_saliency_x:f", "analyzers.eeg_saliency"):
        with pytest.raises(ConfigError, match="is not a function of analyzers.eeg_saliency"):
            plan(spec(bad))
