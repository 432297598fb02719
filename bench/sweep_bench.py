"""Sweep executors: the issue-18 pruning sweep (lrp_pruning on digits_vgg.sk, 4 criteria x 3 rates x
2 seeds = 24 cells, one-shot, 1 torch thread per cell) in-process sequentially, on the local process pool
with 2 workers and on an embedded Ray with 2 workers, each into a fresh cell cache.

Reported: wall time of each, the ratios sequential / local and sequential / ray, the summed cell time
(the runner's own ``duration_s`` of each cell) and the per-cell overhead = (wall x workers - summed cell
time) / cells: process start, imports, model loads, scheduling and result transfer spread over the
cells. Ray's start-up (``ray.init``) is timed apart. ``identical`` says whether the three gave the same
cells bit for bit (timing metrics aside). The machine's load average is recorded with the figures:
on a shared 2-core box the pool cannot beat its own CPU share. ``python -m bench.sweep_bench`` prints
the JSON; the lead stores it under "sweep" in ``make bench``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from workbench.sweep.engine import RunOptions, run_sweep  # noqa: E402
from workbench.sweep.grid import SweepSpec  # noqa: E402
from workbench.sweep.result import is_timing  # noqa: E402

GRID = {"criteria": ["lrp", "taylor", "weight", "random"], "rates": ["10", "30", "50"]}


def _spec(seeds=(0, 1)) -> SweepSpec:
    return SweepSpec("lrp_pruning", ["digits_vgg.sk"], [None], dict(GRID), {}, list(seeds), device="cpu")


def _one(spec: SweepSpec, root: Path, name: str, executor: str, workers: int) -> tuple[dict, object]:
    t0 = time.perf_counter()
    result = run_sweep(spec, root / name, RunOptions(executor, workers))
    wall = time.perf_counter() - t0
    cells = [c["duration_s"] for c in result.info["cells"]]
    n, busy = len(cells), sum(cells)
    return {"wall_s": round(wall, 2), "cells": n, "cell_time_sum_s": round(busy, 2),
            "cell_time_median_s": round(float(np.median(cells)), 3),
            "overhead_per_cell_s": round((wall * workers - busy) / n, 3), "workers": workers}, result


def _same(a, b) -> bool:
    keep = [j for j, n in enumerate(a.info["metric_names"]) if not is_timing(n)]
    return a.info["metric_names"] == b.info["metric_names"] and np.array_equal(
        a.arrays["values"][:, keep], b.arrays["values"][:, keep], equal_nan=True)


def bench_sweep(seeds=(0, 1), with_ray: bool = True) -> dict:
    """Sequential vs local (2 workers) vs Ray (2 workers) on the 24-cell pruning sweep; returns the figures."""
    spec = _spec(seeds)
    out = {"sweep": f"lrp_pruning digits_vgg.sk criteria(4) x rates(3) x seeds({len(seeds)})",
           "threads_per_cell": spec.threads, "load_avg_1min_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out["sequential"], seq = _one(spec, root, "seq", "local", 1)
        out["local"], loc = _one(spec, root, "local", "local", 2)
        out["local_speedup"] = round(out["sequential"]["wall_s"] / out["local"]["wall_s"], 3)
        same = _same(seq, loc)
        if with_ray:
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            out["ray_init_s"] = round(time.perf_counter() - t0, 2)
            try:
                out["ray"], on_ray = _one(spec, root, "ray", "ray", 2)
            finally:
                ray.shutdown()
            out["ray_speedup"] = round(out["sequential"]["wall_s"] / out["ray"]["wall_s"], 3)
            out["ray_overhead_share_of_median_cell"] = round(
                out["ray"]["overhead_per_cell_s"] / max(out["ray"]["cell_time_median_s"], 1e-9), 3)
            same = same and _same(seq, on_ray)
        out["identical"] = bool(same)
    out["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    print(json.dumps(bench_sweep(), indent=2))
