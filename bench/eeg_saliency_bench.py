"""EEG saliency benchmark, called by ``bench/run.py``.

* Saliency for 256 windows of the synthetic set: each method (CAM variant, LRP, IG) batched as the
  analyzer runs it vs one window at a time, same windows, same maps (the ratio is what batching buys;
  the maps must agree).
* The full leave-one-subject-out protocol (11 subjects, the card's recipe: 11 epochs of Adam at
  lr 1e-3, batch 50) on the CPU: wall time and the mean / spread of per-subject accuracy.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from analyzers.eeg_saliency import maps as em
from workbench.data import get_samples
from workbench.runtime import RunContext, load_model, pick_device

MODEL = "eeg_compact.synth"
IG_STEPS = 16
BATCH = 32  # RunSpec's default batch size


def _median(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _windows(n: int, device: str) -> tuple[object, torch.Tensor]:
    handle = load_model(MODEL, device)
    samples = get_samples("eeg_synth.drowsy:all")
    pick = np.linspace(0, len(samples) - 1, n).round().astype(int)
    x = np.stack([handle.card.preprocess(samples[i]) for i in pick])
    return handle, torch.from_numpy(x).to(device)


def bench_saliency(device: str, n: int = 256, repeat: int = 3) -> dict:
    """Seconds per method for ``n`` windows batched vs one at a time, the ratio, and the largest difference."""
    handle, x = _windows(n, device)
    m = handle.module
    sc, sh = em.bn_affine(m, x, "frozen")
    z, a, logits = em.forward_parts(m, x, sc, sh)
    target = logits.argmax(1)
    canon = em.canonical_model(m, sc, sh)
    methods = {
        "cam": lambda i: em.cam_heatmap(m, x[i], z[i], a[i], target[i]),
        "lrp": lambda i: em.lrp_maps(canon, x[i], target[i], 1e-6),
        "ig": lambda i: x[i] * em.ig_gradients(canon, x[i], target[i], IG_STEPS),
    }
    out, idx = {}, torch.arange(n, device=x.device)
    for name, fn in methods.items():
        fn(slice(0, 2))  # warm-up
        ctx = RunContext(device=device, batch_size=BATCH)  # the analyzer's chunking (ctx.batched)
        t_batch, whole = _median(lambda fn=fn, ctx=ctx: ctx.batched(fn, idx, report=False), repeat)
        t_one, parts = _median(lambda fn=fn: torch.cat([fn(slice(i, i + 1)) for i in range(n)]), 1)
        scale = float(whole.abs().max())
        out[name] = {"batched_s": round(t_batch, 4), "one_at_a_time_s": round(t_one, 4),
                     "ratio": round(t_one / max(t_batch, 1e-9), 2),
                     "max_rel_diff": float((whole - parts).abs().max()) / max(scale, 1e-30)}
    return {"windows": n, "device": device, "ig_steps": IG_STEPS, "batch_size": BATCH, "methods": out}


def bench_loso(folds: int = 0) -> dict:
    """Wall time of the leave-one-subject-out protocol with the card's recipe (CPU), and its accuracy."""
    from analyzers.eeg_saliency.loso import loso_data, run_loso

    card = load_model(MODEL, "cpu").card
    x, y, subj = loso_data(card, "eeg_synth.drowsy", None, [])
    t = time.perf_counter()
    res = run_loso(card, x, y, subj, epochs=0, lr=0.0, folds=folds, seed=0, progress=lambda f, msg: None)
    wall = time.perf_counter() - t
    acc = res["accuracy"]
    return {"folds": int(len(acc)), "windows": int(len(y)), "wall_s": round(wall, 2),
            "per_fold_s": round(wall / len(acc), 2), "mean_acc": round(float(acc.mean()), 4),
            "std_acc": round(float(acc.std()), 4), "min_acc": round(float(acc.min()), 4),
            "per_subject": {f"S{int(s)}": round(float(v), 4) for s, v in zip(res["subjects"], acc, strict=True)}}


def bench_eeg_saliency() -> dict:
    """Both measurements; saliency on the best device, the protocol on the CPU (as the issue asks)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return {"saliency_256": bench_saliency(pick_device("auto")), "loso_cpu": bench_loso()}


if __name__ == "__main__":
    import json

    print(json.dumps(bench_eeg_saliency(), indent=2))
