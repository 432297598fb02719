"""Products with the frozen interpreter A(x0), never materializing A.

* rows A^T e_j (what output j looks at): batched VJP, ``vmap`` over one-hot cotangents of ONE
  input's graph (the fast way on CPU and GPU, see ENVIRONMENT.md), in chunks;
* columns A e_i (what input pixel i spreads to): batched forward-mode JVP, ``vmap`` over tangents;
* the bias term c(x0) = y1(x1 = 0) and its exact split over the K bias groups: one replay per
  group for whole images (batched), or one VJP with respect to the scales s per chosen output;
* the top-k singular triplets of A by ARPACK (``scipy.sparse.linalg.svds``) on a matrix-free
  ``LinearOperator``: rmatvec is the VJP; matvec is the bias-free replay A v, which for the affine
  replay equals the JVP exactly (tested) at half its cost.

Shapes: ``in_shape`` = (C, H, W) of the model input, ``out_shape`` = the output without batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from analyzers.linear_scope.replay import Replay

Progress = Callable[[float, str], None]


def _noop(fraction: float, message: str = "") -> None:
    return None


class Products:
    """Rows, columns and bias terms of one replay; the VJP graph is built once and reused."""

    def __init__(self, replay: Replay) -> None:
        self.r = replay
        self.zeros_s = torch.zeros(replay.n_bias, dtype=replay.x0.dtype, device=replay.x0.device)
        self._vjp_fn = None

    @property
    def n_in(self) -> int:
        return int(np.prod(self.r.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.r.out_shape))

    def vjp_fn(self):
        if self._vjp_fn is None:
            _, self._vjp_fn = torch.func.vjp(lambda x: self.r(x, self.zeros_s), self.r.x0)
        return self._vjp_fn

    def rmatmat(self, u: torch.Tensor) -> torch.Tensor:
        """A^T u for a batch of cotangents u (B, *out_shape) -> (B, *in_shape), one vmap call."""
        fn = self.vjp_fn()
        return torch.func.vmap(lambda c: fn(c.unsqueeze(0))[0][0])(u)

    def matmat(self, v: torch.Tensor) -> torch.Tensor:
        """A v for a batch of tangents v (B, *in_shape) -> (B, *out_shape) by forward-mode JVP."""
        def col(t: torch.Tensor) -> torch.Tensor:
            return torch.func.jvp(lambda x: self.r(x, self.zeros_s), (self.r.x0,), (t.unsqueeze(0),))[1][0]

        return torch.func.vmap(col)(v)

    def rows(self, out_index: torch.Tensor, chunk: int = 64, progress: Progress = _noop) -> torch.Tensor:
        """Rows A^T e_j for flat output indices (R,) -> (R, *in_shape)."""
        out = []
        for i in range(0, len(out_index), chunk):
            idx = out_index[i:i + chunk].to(self.r.x0.device)
            cot = torch.zeros(len(idx), self.n_out, dtype=self.r.x0.dtype, device=self.r.x0.device)
            cot[torch.arange(len(idx), device=idx.device), idx] = 1.0
            out.append(self.rmatmat(cot.reshape(len(idx), *self.r.out_shape)))
            progress(min(1.0, (i + chunk) / max(1, len(out_index))), "rows")
        return torch.cat(out) if out else torch.zeros(0, *self.r.in_shape, dtype=self.r.x0.dtype)

    def columns(self, in_index: torch.Tensor, chunk: int = 64, progress: Progress = _noop) -> torch.Tensor:
        """Columns A e_i for flat input indices (Q,) -> (Q, *out_shape)."""
        out = []
        for i in range(0, len(in_index), chunk):
            idx = in_index[i:i + chunk].to(self.r.x0.device)
            tan = torch.zeros(len(idx), self.n_in, dtype=self.r.x0.dtype, device=self.r.x0.device)
            tan[torch.arange(len(idx), device=idx.device), idx] = 1.0
            out.append(self.matmat(tan.reshape(len(idx), *self.r.in_shape)))
            progress(min(1.0, (i + chunk) / max(1, len(in_index))), "columns")
        return torch.cat(out) if out else torch.zeros(0, *self.r.out_shape, dtype=self.r.x0.dtype)

    def pixel_rows(self, pixels: list[tuple[int, int]], chunk: int = 64) -> torch.Tensor:
        """A^T 1_j for output pixels j = (row, col), all output channels together -> (R, *in_shape)."""
        out = []
        for i in range(0, len(pixels), chunk):
            part = pixels[i:i + chunk]
            cot = torch.zeros(len(part), *self.r.out_shape, dtype=self.r.x0.dtype, device=self.r.x0.device)
            for k, (r, c) in enumerate(part):
                cot[k, ..., r, c] = 1.0
            out.append(self.rmatmat(cot))
        return torch.cat(out) if out else torch.zeros(0, *self.r.in_shape, dtype=self.r.x0.dtype)

    def pixel_columns(self, pixels: list[tuple[int, int]], chunk: int = 64) -> torch.Tensor:
        """A 1_i for input pixels i = (row, col), all input channels together (a gray impulse)
        -> (Q, *out_shape)."""
        out = []
        for i in range(0, len(pixels), chunk):
            part = pixels[i:i + chunk]
            tan = torch.zeros(len(part), *self.r.in_shape, dtype=self.r.x0.dtype, device=self.r.x0.device)
            for k, (r, c) in enumerate(part):
                tan[k, ..., r, c] = 1.0
            out.append(self.matmat(tan))
        return torch.cat(out) if out else torch.zeros(0, *self.r.out_shape, dtype=self.r.x0.dtype)

    def bias_split(self, out_index: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Per-group bias contributions to chosen outputs: (K, R) for flat output indices (R,).

        y(x1, s) is linear in the scales s, so d y_j / d s_k = c_k[j]: one VJP with respect to s per
        output instead of one replay per group (cheap for a few logits of a deep net)."""
        zero = torch.zeros_like(self.r.x0)
        ones = torch.ones(self.r.n_bias, dtype=zero.dtype, device=zero.device)
        if self.r.n_bias == 0:
            return torch.zeros(0, len(out_index), dtype=zero.dtype, device=zero.device)
        _, fn = torch.func.vjp(lambda s: self.r(zero, s), ones)
        out = []
        for i in range(0, len(out_index), chunk):
            idx = out_index[i:i + chunk].to(zero.device)
            cot = torch.zeros(len(idx), self.n_out, dtype=zero.dtype, device=zero.device)
            cot[torch.arange(len(idx), device=idx.device), idx] = 1.0
            out.append(torch.func.vmap(lambda c: fn(c.reshape(1, *self.r.out_shape))[0])(cot))
        return torch.cat(out).T

    def bias_terms(self, chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """c(x0) (*out_shape) and its split over the K bias groups (K, *out_shape)."""
        zero = torch.zeros_like(self.r.x0)
        with torch.no_grad():
            c = self.r(zero)[0]
            eye = torch.eye(self.r.n_bias, dtype=zero.dtype, device=zero.device)
            parts = [torch.func.vmap(lambda s: self.r(zero, s)[0])(eye[i:i + chunk])
                     for i in range(0, self.r.n_bias, chunk)]
        return c, (torch.cat(parts) if parts else torch.zeros(0, *self.r.out_shape, dtype=zero.dtype))


def top_singular(prod: Products, k: int, tol: float, seed: int = 0,
                 progress: Progress = _noop) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Top-k singular triplets of A by ARPACK on a matrix-free operator.

    Returns (sigma (k,) descending, U (k, n_out), V (k, n_in), products used); float64 numpy.
    Each Lanczos step costs one JVP (matvec) and one VJP (rmatvec) of the replay.
    """
    from scipy.sparse.linalg import LinearOperator, svds

    dt, dev = prod.r.x0.dtype, prod.r.x0.device
    calls = [0]
    expected = max(1, 6 * (2 * k + 1))

    def matvec(v: np.ndarray) -> np.ndarray:
        calls[0] += 1
        progress(min(0.99, calls[0] / expected), f"singular vectors: {calls[0]} products")
        t = torch.as_tensor(np.ascontiguousarray(v).reshape(1, *prod.r.in_shape), dtype=dt, device=dev)
        with torch.no_grad():
            return prod.r.linear(t).reshape(-1).double().cpu().numpy()

    def rmatvec(u: np.ndarray) -> np.ndarray:
        calls[0] += 1
        t = torch.as_tensor(np.ascontiguousarray(u).reshape(1, *prod.r.out_shape), dtype=dt, device=dev)
        return prod.rmatmat(t)[0].reshape(-1).double().cpu().numpy()

    op = LinearOperator((prod.n_out, prod.n_in), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(min(prod.n_out, prod.n_in))
    u, s, vt = svds(op, k=k, tol=tol, v0=v0, which="LM", solver="arpack", maxiter=max(200, 40 * k))
    order = np.argsort(-s)
    return s[order], u[:, order].T, vt[order], calls[0]
