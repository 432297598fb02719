"""LinearScope speed: rows of A (Jacobian compression on fully-convolutional replays, else batched VJPs in a
measured chunk) against a Python loop of single backward passes, and the top-16 singular triplets of sr_cnn.x2
on a 64x64 input (CUDA when present, else CPU)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analyzers.linear_scope.footprint import field  # noqa: E402
from analyzers.linear_scope.products import Products, pack, top_singular  # noqa: E402
from analyzers.linear_scope.replay import trace  # noqa: E402

ROWS = 256
SVD_K = 16


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _model(device: str) -> tuple[torch.nn.Module, torch.Tensor, str]:
    """sr_cnn.x2 and the camera picture (1, 1, 64, 64); seeded random weights if the zoo is not built."""
    from workbench.core.cards import get_card
    from workbench.runtime import load_model, make_batch

    card = get_card("sr_cnn.x2")
    if card.status(card).get("available"):
        handle = load_model(card.id, device)
        return handle.module, make_batch(card, "skimage:camera", device).x[:1], "sr_cnn.x2 (trained)"
    torch.manual_seed(0)
    return card.build().eval().to(device), torch.rand(1, 1, 64, 64, device=device), "SRCNNx2 (untrained: zoo not built)"


def _loop_rows(replay, index: torch.Tensor) -> torch.Tensor:
    """The baseline: one ``autograd.grad`` per row on one retained graph."""
    x = replay.x0.clone().requires_grad_(True)
    y = replay.linear(x).reshape(-1)
    return torch.stack([torch.autograd.grad(y[j], x, retain_graph=True)[0][0] for j in index.tolist()])


def compression(replay, index: torch.Tensor) -> dict:
    """Backward passes the rows share (greedy packing of disjoint input fields) and the floor no exact packing
    can beat: the most fields covering one input pixel (each of those rows needs its own pass)."""
    if replay.footprint is None:
        return {"backward_passes": len(index), "footprint": None}
    sp, in_sp = replay.out_shape[1:], replay.in_shape[1:]
    fields = [field(replay.footprint, np.unravel_index(int(j) % int(np.prod(sp)), sp), in_sp) for j in index.tolist()]
    cover = np.zeros(in_sp, dtype=np.int64)
    for f in fields:
        if f is not None:
            cover[f] += 1
    return {"backward_passes": len(pack(fields, in_sp)), "backward_passes_floor": int(cover.max()),
            "footprint": [[str(v) for v in axis] for axis in replay.footprint]}


def rows_vs_loop(replay, device: str) -> dict:
    """ROWS rows of one input's A (compressed / batched VJP, measured chunk) against a loop."""
    prod = Products(replay)
    index = torch.randperm(prod.n_out, generator=torch.Generator().manual_seed(0))[:ROWS].to(device)
    prod.rows(index[:8])  # warm-up (builds and keeps the VJP graph)
    _loop_rows(replay, index[:8])
    _sync()
    t = time.perf_counter()
    batched = prod.rows(index)
    _sync()
    vmap_s = time.perf_counter() - t
    t = time.perf_counter()
    looped = _loop_rows(replay, index)
    _sync()
    loop_s = time.perf_counter() - t
    return {"rows": len(index), **compression(replay, index), "rows_batched_vjp_s": round(vmap_s, 4),
            "rows_loop_s": round(loop_s, 4), "rows_loop_over_batched": round(loop_s / max(vmap_s, 1e-9), 2),
            "rows_max_abs_diff": float((batched - looped).abs().max())}


def _resnet18_rows(device: str) -> dict:
    """The many-small-ops case: 256 of the 1000 logit rows of a seeded torchvision ResNet-18 at 64x64."""
    import torchvision

    torch.manual_seed(0)
    module = torchvision.models.resnet18(weights=None).eval().to(device)
    replay = trace(module, torch.rand(1, 3, 64, 64, device=device))
    return {"model": "resnet18 (seeded random weights), 3x64x64", **rows_vs_loop(replay, device)}


def bench_linear_scope() -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module, x, which = _model(device)
    t = time.perf_counter()
    replay = trace(module, x)
    trace_s = time.perf_counter() - t
    prod = Products(replay)
    rows = rows_vs_loop(replay, device)
    t = time.perf_counter()
    sigma, _, _, calls = top_singular(prod, SVD_K, 1e-4)
    _sync()
    svd_s = time.perf_counter() - t
    return {"model": which, "device": device, "input": list(x.shape[1:]), "trace_s": round(trace_s, 4), **rows,
            "classifier_rows": _resnet18_rows(device), "svd_k": SVD_K, "svd_s": round(svd_s, 3),
            "svd_products": int(calls),
            "svd_top_singular_values": [round(float(s), 5) for s in np.asarray(sigma)[:4]]}


if __name__ == "__main__":
    import json

    torch.set_num_threads(2)
    print(json.dumps(bench_linear_scope(), indent=2))
