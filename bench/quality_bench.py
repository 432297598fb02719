"""Cost of the quality panel (issue 17): attribution on 64 ``digits:test`` samples of digits_vgg.sk with the
panel on (deletion / insertion curves against a random map, Gini, effective support) against the same run
with it off, per map method, interleaved A/B (bench.timing.ab). ``panel_cost_per_map`` = (on - off) / off:
the panel's extra CPU time relative to computing the maps themselves. ``linear_scope``: the same for LinearScope's
vote maps on 8 samples (every sample's frozen replay is the map's cost), with the panel alone and with eMPRT and
the random-logit test (``quality_randomization``: two more frozen replays per sample).
``python -m bench.quality_bench``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402

from bench.timing import ab  # noqa: E402
from workbench.runtime import RunSpec, run  # noqa: E402

MODEL, DATA = "digits_vgg.sk", "digits:test:0-63"
METHODS = ("integrated_gradients", "saliency", "grad_cam")


def _run(method: str, quality: bool, data: str):
    cfg = {"method": method, "n_steps": 32, "ig_max_steps": 32, "sanity_check": False, "quality": quality}
    spec = RunSpec("attribution", MODEL, data, cfg, device="cpu")
    return lambda: run(spec)


def _scope(quality: bool, randomization: bool, data: str):
    cfg = {"svd_k": 0, "top_classes": 1, "quality": quality, "quality_randomization": randomization}
    spec = RunSpec("linear_scope", MODEL, data, cfg, device="cpu")
    return lambda: run(spec)


def bench_linear_scope(rounds: int = 1, data: str = "digits:test:0-7") -> dict:
    out = {"data": data}
    for key, randomization in (("panel", False), ("panel_emprt_random_logit", True)):
        row = ab(_scope(True, randomization, data), _scope(False, False, data), rounds=rounds, warmup=1)
        row["panel_cost_per_map"] = round(row["ratio"] - 1.0, 3)
        out[key] = row
    return out


def bench_quality(rounds: int = 2, data: str = DATA) -> dict:
    out = {"model": MODEL, "data": data, "goal": "reported (no target): the panel's cost per map vs the map"}
    for method in METHODS:
        row = ab(_run(method, True, data), _run(method, False, data), rounds=rounds, warmup=1)
        row["panel_cost_per_map"] = round(row["ratio"] - 1.0, 3)
        out[method] = row
    out["linear_scope"] = bench_linear_scope()
    return out


if __name__ == "__main__":
    print(json.dumps(bench_quality(rounds=1, data="digits:test:0-15"), indent=2))
