"""Empirical neural tangent kernel of a PyTorch model: Gram by Jacobian contraction, NTK-vector products
and Lanczos, and the checks that make the numbers trustworthy.

Theta(x, x') = sum_p df(x)/dtheta_p df(x')/dtheta_p = J(x) J(x')^T (Jacot et al. 2018; the PyTorch
"Neural Tangent Kernels" tutorial; Novak et al. 2022, arXiv:2206.08720). Multi-output models use either
the **trace NTK** sum_c J_c J_c^T (``output="trace"``) or the NTK of the summed logits
(``output="sum"``); the choice is stored with the result.

- :func:`ntk_gram`: ``vmap(jacrev)`` over samples, chunked over parameter groups so that a Jacobian block
  takes at most ``budget_mb`` (K = sum_g J_g J_g^T). Never vjp-of-jvp (10x slower, 9x the memory).
- :func:`ntk_matvec` / :func:`ntk_top_eigs`: K v = sum_c J_c (J_c^T v) by one batched ``vjp`` and one
  ``jvp`` per output, fed to ARPACK (``eigsh`` on a ``LinearOperator``): O(P + n) memory.
- :func:`grad_norms_sq`: sum_c ||grad_theta f_c(x_i)||^2 by plain autograd, one sample at a time, an
  independent code path for the trace identity trace(K) = sum_i sum_c ||grad f_c(x_i)||^2.

The model must be in eval mode (BatchNorm statistics and dropout frozen); parameters are read, never changed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, jacrev, jvp, vjp, vmap


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in module.named_parameters()}


def _buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in module.named_buffers()}


def _groups(params: dict[str, torch.Tensor], per_param_bytes: int, budget: int) -> list[list[str]]:
    """Split parameter names into groups whose Jacobian block fits the budget (one big tensor alone if need be)."""
    groups, cur, size = [], [], 0
    for name, p in params.items():
        b = p.numel() * per_param_bytes
        if cur and size + b > budget:
            groups.append(cur)
            cur, size = [], 0
        cur.append(name)
        size += b
    if cur:
        groups.append(cur)
    return groups


def ntk_gram(module: torch.nn.Module, x: torch.Tensor, *, output: str = "trace", budget_mb: int = 256,
             sample_chunk: int = 64, progress=None) -> np.ndarray:
    """Empirical NTK Gram matrix by Jacobian contraction.

    x: (n, *input_shape) float32 on the module's device. Returns K float64 (n, n), symmetric
    (not symmetrised: the caller measures the asymmetry). Memory: one block of n * C * P_g * 4 bytes."""
    params, buffers = _params(module), _buffers(module)
    n = x.shape[0]
    with torch.no_grad():
        n_out = module(x[:1]).reshape(1, -1).shape[1] if output == "trace" else 1
    groups = _groups(params, n * n_out * 4, budget_mb * 2**20)
    k = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    for gi, names in enumerate(groups):
        fixed = {kk: v for kk, v in params.items() if kk not in names}

        def f(sub, xi, fixed=fixed):
            out = functional_call(module, ({**fixed, **sub}, buffers), (xi[None],)).reshape(-1)
            return out if output == "trace" else out.sum()[None]

        sub = {kk: params[kk] for kk in names}
        blocks = []
        for i in range(0, n, sample_chunk):
            jac = vmap(jacrev(f), in_dims=(None, 0))(sub, x[i:i + sample_chunk])
            blocks.append(torch.cat([j.reshape(j.shape[0], n_out, -1) for j in jac.values()], -1))
        jg = torch.cat(blocks)  # (n, C, P_g)
        k += torch.einsum("icp,jcp->ij", jg, jg).double()
        del jg, blocks
        if progress is not None:
            progress((gi + 1) / len(groups), f"NTK Jacobian block {gi + 1}/{len(groups)}")
    return k.cpu().numpy()


def ntk_matvec(module: torch.nn.Module, x: torch.Tensor, v: np.ndarray, *, output: str = "trace") -> np.ndarray:
    """K v without forming K: sum_c J_c (J_c^T v). v: (n,) float -> (n,) float64."""
    params, buffers = _params(module), _buffers(module)

    def f(p):
        return functional_call(module, (p, buffers), (x,)).reshape(x.shape[0], -1)

    vt = torch.as_tensor(np.asarray(v), dtype=x.dtype, device=x.device)
    out, pull = vjp(f, params)
    n, c = out.shape
    res = torch.zeros(n, dtype=torch.float64, device=x.device)
    # a loop over outputs, not vmap: vmapping over a batched graph is slower here (ENVIRONMENT.md)
    for j in range(c if output == "trace" else 1):
        cot = torch.zeros_like(out)
        if output == "trace":
            cot[:, j] = vt
        else:
            cot[:] = vt[:, None]
        (grads,) = pull(cot)  # J_c^T v
        tangent = jvp(f, (params,), (grads,))[1]  # (n, C)
        res += (tangent[:, j] if output == "trace" else tangent.sum(-1)).double()
    return res.cpu().numpy()


def ntk_top_eigs(module: torch.nn.Module, x: torch.Tensor, k: int, *, output: str = "trace",
                 tol: float = 1e-6, seed: int = 0) -> tuple[np.ndarray, int]:
    """The k largest NTK eigenvalues by Lanczos (ARPACK) on NTK-vector products.

    Returns (eigenvalues float64 (k,) descending, number of matrix-vector products)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = x.shape[0]
    count = [0]

    def mv(v):
        count[0] += 1
        return ntk_matvec(module, x, np.ravel(v), output=output)

    op = LinearOperator((n, n), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    vals = eigsh(op, k=min(k, n - 1), which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(vals)[::-1], count[0]


def grad_norms_sq(module: torch.nn.Module, x: torch.Tensor, *, output: str = "trace") -> np.ndarray:
    """sum_c ||grad_theta f_c(x_i)||^2 per sample by plain autograd (one backward per sample and output).

    x: (m, *input_shape) -> (m,) float64. The reference for the trace identity."""
    params = [p for p in module.parameters()]
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        y = module(x[i:i + 1]).reshape(-1)
        ys = list(y) if output == "trace" else [y.sum()]
        for j, yc in enumerate(ys):
            g = torch.autograd.grad(yc, params, retain_graph=j < len(ys) - 1, allow_unused=True)
            out[i] += float(sum((gg.double() ** 2).sum() for gg in g if gg is not None))
    return out


def spectrum_slope(eigs: np.ndarray, lo: int = 2, hi_frac: float = 0.5) -> float:
    """Least-squares slope of log(lambda_k) against log(k) over ranks lo .. hi_frac * n (1-based),
    positive eigenvalues only. A finite-n descriptor: compare models at the same n, not with theory."""
    e = np.sort(np.asarray(eigs, dtype=np.float64))[::-1]
    ranks = np.arange(1, e.size + 1)
    sel = (ranks >= lo) & (ranks <= max(lo + 2, int(hi_frac * e.size))) & (e > 1e-12 * max(e[0], 1e-300))
    if sel.sum() < 3:
        return 0.0
    return float(np.polyfit(np.log(ranks[sel]), np.log(e[sel]), 1)[0])
