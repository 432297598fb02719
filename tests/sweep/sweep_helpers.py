"""Shared by the sweep tests: a tiny pruning grid (one-shot weight/random pruning of digits_vgg.sk, each cell
well under a second) and a comparison of cell results that ignores only measured times."""

from __future__ import annotations

import numpy as np

from workbench.sweep.grid import SweepSpec
from workbench.sweep.result import is_timing

MODEL = "digits_vgg.sk"


def tiny_spec(seeds=(0, 1), rates=("20", "40"), criteria=("weight", "random")) -> SweepSpec:
    return SweepSpec("lrp_pruning", [MODEL], [None], {"criteria": list(criteria), "rates": list(rates)},
                     {"reference_per_class": "3"}, list(seeds), device="cpu")


def same_cells(a: dict, b: dict) -> list[str]:
    """Differences between two {key: Result} maps: every array bit for bit, every metric but timings."""
    diffs = [] if a.keys() == b.keys() else ["keys"]
    for k in sorted(set(a) & set(b)):
        ra, rb = a[k], b[k]
        if sorted(ra.arrays) != sorted(rb.arrays):
            diffs.append(f"{k}: array names")
        diffs += [f"{k}: array {n}" for n in ra.arrays if n in rb.arrays
                  and not np.array_equal(ra.arrays[n], rb.arrays[n], equal_nan=True)]
        diffs += [f"{k}: metric {n}" for n, v in ra.metrics.items() if not is_timing(n)
                  and not (v == rb.metrics.get(n) or (v != v and rb.metrics.get(n) != rb.metrics.get(n)))]
    return diffs


def same_aggregate(a, b) -> list[str]:
    """Differences between two SweepResults: the per-cell table and every statistic, timing columns aside."""
    names = a.info["metric_names"]
    if names != b.info["metric_names"]:
        return ["metric names"]
    keep = [j for j, n in enumerate(names) if not is_timing(n)]
    out = [n for n in ("values", "mean", "sd", "count")
           if not np.array_equal(a.arrays[n][:, keep], b.arrays[n][:, keep], equal_nan=True)]
    out += [n for n in ("cell_group", "seeds") if not np.array_equal(a.arrays[n], b.arrays[n])]
    strip = [{k: v for k, v in c.items() if k != "duration_s"} for c in a.info["cells"]]
    if strip != [{k: v for k, v in c.items() if k != "duration_s"} for c in b.info["cells"]]:
        out.append("cells")
    return out + [k for k, v in a.metrics.items() if not is_timing(k) and b.metrics.get(k) != v]


def same_result(a, b, skip_metrics=()) -> list[str]:
    """Differences between two Results of one call (a single run and a split one merged): every array bit for
    bit, every metric but timings and ``skip_metrics``, every check's name, verdict and value."""
    diffs = same_cells({"r": a}, {"r": b})
    diffs = [d for d in diffs if not any(d.endswith(f"metric {n}") for n in skip_metrics)]
    diffs += [f"metric names {sorted(set(a.metrics) ^ set(b.metrics))}"] if set(a.metrics) != set(b.metrics) else []
    ca = [(c.name, c.passed, c.value) for c in a.checks]
    cb = [(c.name, c.passed, c.value) for c in b.checks]
    return diffs + ([f"checks {ca} != {cb}"] if ca != cb else [])


def single_call(analyzer: str, model: str, data, config: dict, seed: int = 0):
    """One ``workbench run`` in a fresh process on the sweep's torch thread count (1), the baseline a split
    call must equal. Not in the test process: there, earlier tests ran the same layers under other thread
    counts, and a later single call can differ in the last bits (seen: transferability after its own tests,
    with conftest's 2 threads), while every sweep worker is a fresh process."""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from workbench.core.result import Result

    out = Path(tempfile.mkdtemp(prefix="wb-single-")) / "r"
    sets = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in config.items()]
    cmd = [sys.executable, "-m", "workbench.cli", "run", analyzer, *(["--model", model] if model else []),
           *(["--data", data] if data else []), *[a for kv in sets for a in ("--set", kv)], "--seed", str(seed),
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return Result.load(out)
