"""Receptive-field benchmark, called by ``bench/run.py``.

* ERF over 50 inputs on one model: batched (the analyzer's chunking) vs one image per backward pass,
  same inputs, same map (the ratio is the speed-up batching buys; the maps must agree).
* Theoretical RF of torchvision ResNet-50: trace + shape propagation + recurrence, and the recurrence
  alone; it must stay well under a second (no per-pixel probing).
"""

from __future__ import annotations

import numpy as np

from analyzers.receptive_field.analyzer import _chunk_size
from analyzers.receptive_field.erf import centre_scalar, erf_map, fill_inputs
from analyzers.receptive_field.graph import analyze, truncated, walk
from bench.timing import median_time
from workbench.runtime import RunContext, load_model, make_batch, pick_device


def one_image_loop(net, x, dims: tuple) -> np.ndarray:
    """The naive ERF (RepLKNet's ``erf/visualize_erf.py``): one image per forward and backward pass of the
    model as it is, ReLU of the input gradient summed over channels, mean over the finite maps."""
    import torch

    total, used = 0.0, 0
    for i in range(x.shape[0]):
        xi = x[i:i + 1].detach().requires_grad_(True)
        (g,) = torch.autograd.grad(centre_scalar(net(xi), dims, "replknet"), xi)
        m = torch.relu(g).sum(1)[0].double()
        if bool(torch.isfinite(m).all()):
            total, used = total + m, used + 1
    return (total / max(used, 1)).cpu().numpy()


def _median(fn, repeat: int) -> float:
    return median_time(fn, repeat, warmup=False)


def bench_erf(device: str, model_id: str, layer: str, n_images: int, repeat: int) -> dict:
    """Seconds for the ERF over ``n_images`` batched vs one at a time, and their ratio."""
    handle = load_model(model_id, device)
    card = handle.card
    an = analyze(handle.module, card.input_shape)
    row = an.find(layer)
    net = truncated(an.gm, row.node)
    x, how = fill_inputs(make_batch(card, card.default_data, device).x, card.input_shape[1:], n_images,
                         "augment", 0, flip=True)
    chunk = _chunk_size(an, RunContext(device=device, batch_size=n_images))

    maps: dict = {}

    def once(batch: int) -> None:
        maps[batch] = erf_map(net, x, row.box.dims, "replknet", RunContext(device=device, batch_size=batch),
                              chunk=batch)[0]

    once(chunk)  # warm-up (allocator, kernels)
    batched = _median(lambda: once(chunk), repeat)
    single = _median(lambda: once(1), repeat)
    diff = float(np.abs(maps[chunk] - maps[1]).max() / max(np.abs(maps[1]).max(), 1e-30))
    return {"model": model_id, "layer": layer, "images": n_images, "inputs": how, "chunk": chunk,
            "batched_s": round(batched, 3), "one_at_a_time_s": round(single, 3),
            "one_at_a_time_over_batched": round(single / batched, 2), "max_rel_map_difference": diff}


def bench_theory(device: str, model_id: str = "torchvision.resnet50", layer: str = "layer4",
                 repeat: int = 5) -> dict:
    """Seconds for the theoretical RF of every layer (trace + shapes + recurrence; recurrence alone)."""
    handle = load_model(model_id, device)
    shape = handle.card.input_shape
    total = _median(lambda: analyze(handle.module, shape), repeat)
    an = analyze(handle.module, shape)
    rec = _median(lambda: walk(an.gm, lambda msg: None), repeat)
    box = an.find(layer).box
    return {"model": model_id, "layer": layer, "rf_size": box.r[0], "rf_jump": box.j[0], "layers": len(an.rows),
            "trace_shapes_recurrence_s": round(total, 4), "recurrence_only_s": round(rec, 5),
            "under_one_second": total < 1.0}


def bench_receptive_field(device: str = "auto", erf_model: str = "torchvision.resnet18", erf_layer: str = "layer4",
                          n_images: int = 50, repeat: int = 2) -> dict:
    """Both measurements as one JSON-ready dict."""
    dev = pick_device(device)
    return {"device": dev, "erf_batched_vs_single": bench_erf(dev, erf_model, erf_layer, n_images, repeat),
            "theoretical_rf": bench_theory(dev)}


if __name__ == "__main__":
    import json

    print(json.dumps(bench_receptive_field(), indent=2))
