"""kernel_spectra benchmark: the FFT method against the dense SVD, every conv layer of resnet18 at 224, and the
empirical NTK Gram for 256 inputs by Jacobian contraction against the vjp-of-jvp recipe.

Called from ``bench/run.py``; ``python -m bench.kernel_spectra_bench`` prints the dict.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analyzers.kernel_spectra.conv import dense_conv_matrix, dense_singular_values, fft_singular_values  # noqa: E402
from analyzers.kernel_spectra.layers import discover  # noqa: E402
from analyzers.kernel_spectra.ntk import ntk_gram  # noqa: E402

NTK_N = 256
VJP_BLOCK = 16  # rows of the Gram per vjp-of-jvp call (memory grows with the block)


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def fft_vs_dense(c: int = 8, n: int = 16) -> dict:
    """One c -> c 3x3 conv at n x n (circular): both methods, their agreement and the time ratio."""
    w = np.random.default_rng(0).standard_normal((c, c, 3, 3))
    t_fft, fft = _timed(lambda: fft_singular_values(w, (n, n)))
    t_dense, dense = _timed(lambda: dense_singular_values(dense_conv_matrix(w, (n, n))))
    err = float(np.abs(np.sort(dense)[-fft["values"].size:] - fft["values"]).max())
    return {"layer": f"{c}->{c} 3x3 at {n}x{n}", "operator": [c * n * n, c * n * n], "fft_s": round(t_fft, 4),
            "dense_s": round(t_dense, 4), "dense_over_fft": round(t_dense / t_fft, 1), "max_abs_diff": err}


def resnet18_all_convs() -> dict:
    """FFT singular values of all 20 conv layers of resnet18 (random init) at their real input sizes."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    layers = [li for li in discover(model, (3, 224, 224)).layers if li.kind == "conv"]
    total, count, per = 0.0, 0, []
    for li in layers:
        m = li.module
        w = m.weight.detach().double().numpy()
        t, res = _timed(lambda m=m, w=w, li=li: fft_singular_values(w, li.input_size, m.stride, m.dilation,
                                                                   m.groups))
        total += t
        count += res["values"].size
        per.append({"layer": li.name, "input": list(li.input_size), "time_s": round(t, 3)})
    return {"layers": len(layers), "singular_values": count, "total_s": round(total, 2),
            "slowest": sorted(per, key=lambda r: -r["time_s"])[:3]}


def _vjp_of_jvp_block(model, params, buffers, x1, x2) -> torch.Tensor:
    """The PyTorch tutorial's NTK-vector-product recipe for one block of rows (x1 against all x2)."""
    from torch.func import functional_call, jvp, vjp, vmap

    def f(p, x):
        return functional_call(model, (p, buffers), (x[None],)).sum()[None]

    def pair(a, b):
        out, pull = vjp(lambda p: f(p, a), params)
        basis = torch.eye(out.numel(), dtype=out.dtype)
        return vmap(lambda v: jvp(lambda p: f(p, b), (params,), pull(v))[1])(basis)

    return vmap(vmap(pair, (None, 0)), (0, None))(x1, x2).reshape(x1.shape[0], x2.shape[0])


def ntk_methods(n: int = NTK_N, full_vjp: bool = False) -> dict:
    """Gram of the summed-logit NTK of the DigitsVGG architecture (init) on n inputs: vmap(jacrev) vs the
    vjp-of-jvp recipe (one block of VJP_BLOCK rows timed and extrapolated unless ``full_vjp``)."""
    from models.architectures import DigitsVGG

    torch.manual_seed(0)
    model = DigitsVGG().eval()
    x = torch.randn(n, 1, 32, 32)
    t_jac, k = _timed(lambda: ntk_gram(model, x, output="sum"))
    params = {a: b.detach() for a, b in model.named_parameters()}
    buffers = {a: b.detach() for a, b in model.named_buffers()}
    blocks = range(0, n, VJP_BLOCK) if full_vjp else range(0, VJP_BLOCK, VJP_BLOCK)
    t_vjp, rows = _timed(lambda: [_vjp_of_jvp_block(model, params, buffers, x[i:i + VJP_BLOCK], x) for i in blocks])
    measured = torch.cat(rows).double().numpy()
    t_full = t_vjp * (1 if full_vjp else -(-n // VJP_BLOCK))
    err = float(np.abs(measured - k[:measured.shape[0]]).max() / np.abs(k).max())
    return {"n": n, "params": sum(p.numel() for p in model.parameters()), "jacobian_s": round(t_jac, 2),
            "vjp_of_jvp_s": round(t_full, 2), "vjp_of_jvp_extrapolated": not full_vjp,
            "vjp_over_jacobian": round(t_full / t_jac, 1), "max_rel_diff": err}


def bench_kernel_spectra() -> dict:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return {"fft_vs_dense": fft_vs_dense(), "resnet18_convs_at_224": resnet18_all_convs(),
            "ntk_gram_256": ntk_methods()}


if __name__ == "__main__":
    print(json.dumps(bench_kernel_spectra(), indent=2))
