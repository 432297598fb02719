"""Timing shared by every bench: medians with CUDA synchronisation around each call."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeat: int = 5, warmup: bool = True) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` calls (after one warm-up call)."""
    import torch

    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _stats(values: list[float]) -> dict:
    return {"min": round(min(values), 5), "median": round(statistics.median(values), 5), "max": round(max(values), 5)}


def ab(ours, peer, rounds: int = 3, warmup: int = 1) -> dict:
    """``ours()`` and ``peer()`` interleaved (A, B, A, B, ...) after ``warmup`` calls of each, so drifts in
    machine load hit both alike. CPU time (``time.process_time``: every thread of this process, not the
    other agents on the box) and wall time; min/median/max of each; ``ratio`` = ours / peer of the CPU
    medians (below 1: ours is faster), ``wall_ratio`` the same of the wall medians."""
    for _ in range(warmup):
        ours()
        peer()
    cpu: dict = {"ours": [], "peer": []}
    wall: dict = {"ours": [], "peer": []}
    for _ in range(rounds):
        for side, fn in (("ours", ours), ("peer", peer)):
            _sync()
            c, w = time.process_time(), time.perf_counter()
            fn()
            _sync()
            cpu[side].append(time.process_time() - c)
            wall[side].append(time.perf_counter() - w)
    out = {f"{side}_{kind}_s": _stats(v[side]) for kind, v in (("cpu", cpu), ("wall", wall)) for side in v}
    out["ratio"] = round(statistics.median(cpu["ours"]) / max(statistics.median(cpu["peer"]), 1e-9), 3)
    out["wall_ratio"] = round(statistics.median(wall["ours"]) / max(statistics.median(wall["peer"]), 1e-9), 3)
    out["rounds"] = rounds
    return out
