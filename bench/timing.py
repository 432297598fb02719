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
