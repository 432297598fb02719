"""Data-set run speed: Integrated Gradients over a whole split through the runner's data-set path
(chunks, batched IG, completeness per sample) against a plain captum loop over the same samples (one
``IntegratedGradients.attribute`` per sample, same ``n_steps``; step doubling off, like for like).
Interleaved A/B rounds after a warm-up of each, so drifts in machine load hit both sides alike.
Goal: ratio (ours / captum samples per second)
>= 1.0. ``python -m bench.dataset_bench`` prints the JSON; ``make bench`` stores it under "dataset_run".
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from bench.timing import median_time  # noqa: E402
from workbench.runtime import RunSpec, load_model, make_batch, pick_device, run  # noqa: E402

MODEL, DATA, STEPS = "digits_vgg.sk", "digits:test", 64
WARMUP_DATA = "digits:test:0-15"


def _ours(data: str, device: str):
    spec = RunSpec("attribution", MODEL, data, {"method": "integrated_gradients", "n_steps": STEPS,
                                                "ig_max_steps": STEPS, "sanity_check": False}, device=device)
    return lambda: run(spec)


def _captum_loop(data: str, device: str):
    """One IntegratedGradients.attribute per sample (captum's default: all path steps in one batch)."""
    from captum.attr import IntegratedGradients

    handle = load_model(MODEL, device)
    x = make_batch(handle.card, data, device).x
    ig = IntegratedGradients(handle.module)

    def loop():
        for i in range(x.shape[0]):
            xi = x[i:i + 1].clone().requires_grad_(True)
            with torch.no_grad():
                t = handle.module(xi).argmax(1)
            ig.attribute(xi, torch.zeros_like(xi), target=t, n_steps=STEPS)
    return loop, int(x.shape[0])


def bench_dataset_run(device: str = "auto", rounds: int = 3) -> dict:
    device = pick_device(device)
    for warm in (_ours(WARMUP_DATA, device), _captum_loop(WARMUP_DATA, device)[0]):
        warm()
    ours, (loop, n) = _ours(DATA, device), _captum_loop(DATA, device)
    a, b, cpu = [], [], {"ours": [], "captum": []}
    for _ in range(rounds):  # interleaved: A, B, A, B, ...
        for side, fn, out in (("ours", ours, a), ("captum", loop, b)):
            c = time.process_time()
            out.append(median_time(fn, repeat=1, warmup=False))
            cpu[side].append(round(time.process_time() - c, 2))  # less sensitive to other processes
    result = ours()
    t_a, t_b = statistics.median(a), statistics.median(b)
    return {"model": MODEL, "data": DATA, "n_samples": n, "n_steps": STEPS, "device": device, "rounds": rounds,
            "ours_s": [round(t, 3) for t in a], "captum_loop_s": [round(t, 3) for t in b],
            "ours_samples_per_s": round(n / t_a, 2), "captum_samples_per_s": round(n / t_b, 2),
            "ratio": round(t_b / t_a, 3), "goal": ">= 1.0", "ours_cpu_s": cpu["ours"], "captum_cpu_s": cpu["captum"],
            "cpu_ratio": round(statistics.median(cpu["captum"]) / statistics.median(cpu["ours"]), 3),
            "completeness_ok_fraction": result.metrics.get("completeness_ok_fraction"),
            "completeness_gap_max": result.metrics.get("completeness_gap")}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(bench_dataset_run(args.device, args.rounds), indent=2))
