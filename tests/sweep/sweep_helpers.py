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
