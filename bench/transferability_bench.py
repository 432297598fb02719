"""Transferability benchmark: a full small grid's wall time with cached frozen-trunk features vs without.

With the cache, a frozen cell runs its source's layers 1..n once over the training inputs and trains the
upper layers on those features; without it, the frozen trunk is re-run (under no_grad) on every batch of
every epoch. The numbers must not change (same batches, same order), only the time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402

import numpy as np  # noqa: E402

from analyzers.transferability import grid as tg  # noqa: E402
from analyzers.transferability import nets as tn  # noqa: E402
from workbench.runtime import pick_device  # noqa: E402

GRID = {"dataset": "mnist1d", "num_samples": 3000, "classes_a": (0, 1, 2, 3, 4), "classes_b": (5, 6, 7, 8, 9),
        "cuts": (1, 2, 3, 4, 5), "seeds": (0,), "epochs": 8, "lr": 3e-3, "batch_size": 128}


def _timed_grid(spec: tg.GridSpec, tasks: dict) -> tuple[float, float, float, np.ndarray]:
    """Run the grid from a cold cache: (wall seconds, process CPU seconds, wall seconds in frozen cells,
    accuracies (S, 5, K))."""
    tg.clear_caches()
    t0, c0 = time.perf_counter(), time.process_time()
    out = tg.Grid(spec, tasks, lambda f, m="": None).run()
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    frozen = sum(tg._CELLS.get(key).seconds for (_, t, _), key in out.cells.items() if t in tg.FROZEN)
    tg.clear_caches()
    return total, cpu, frozen, out.acc


def bench_transferability(device: str | None = None) -> dict:
    """Wall time of the same grid with and without cached frozen-trunk features, and their ratio."""
    dev = device or pick_device("auto")
    arrays = tn.load_arrays(GRID["dataset"], GRID["num_samples"])
    tasks = {"a": tn.task_tensors(arrays, GRID["classes_a"], dev), "b": tn.task_tensors(arrays, GRID["classes_b"], dev)}
    base = tg.GridSpec(**GRID, random_control=True, cache_features=True, device=dev)
    tn.train(tn.build_net(GRID["dataset"], 5, 0).to(dev), tasks["b"]["x_train"][:256], tasks["b"]["y_train"][:256],
             frozen=0, epochs=1, lr=1e-3, batch_size=128, seed=0)  # warm-up: first optimizer import, kernels
    cached, cached_cpu, cached_frozen, acc_c = _timed_grid(base, tasks)
    plain, plain_cpu, plain_frozen, acc_p = _timed_grid(tg.GridSpec(**GRID, random_control=True, cache_features=False,
                                                         device=dev), tasks)
    return {"device": dev, "dataset": GRID["dataset"], "num_samples": GRID["num_samples"],
            "cells": len(tg.cell_plan(base)), "epochs": GRID["epochs"],
            "grid_s_cached": round(cached, 3), "grid_s_uncached": round(plain, 3),
            "grid_speedup": round(plain / cached, 3), "grid_cpu_s_cached": round(cached_cpu, 3),
            "grid_cpu_s_uncached": round(plain_cpu, 3), "grid_cpu_speedup": round(plain_cpu / max(cached_cpu, 1e-9), 3),
            "frozen_cells_s_cached": round(cached_frozen, 3), "frozen_cells_s_uncached": round(plain_frozen, 3),
            "frozen_cells_speedup": round(plain_frozen / max(cached_frozen, 1e-9), 3),
            "max_abs_acc_diff": float(np.abs(acc_c - acc_p).max())}


if __name__ == "__main__":
    import json

    print(json.dumps(bench_transferability(), indent=2))
