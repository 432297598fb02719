"""Products with the frozen interpreter A(x0), never materializing A.

* rows A^T e_j (what output j looks at): on a fully-convolutional replay (``replay.footprint``) rows whose
  input fields are disjoint share one backward pass and are cut apart by their fields (Jacobian compression,
  exact: sr_cnn.x2, 256 random rows of a 64 x 64 input in 14 passes, 14x faster than a loop of 256); else
  VJPs of ONE input's graph, ``vmap`` over one-hot cotangents in chunks whose size is measured
  (:func:`measured_chunks`; chunk 1 = one plain VJP, the fastest on a CPU for conv nets);
* columns A e_i (what input pixel i spreads to): batched forward-mode JVP, ``vmap`` over tangents;
* the bias term c(x0) = y1(x1 = 0) and its exact split over the K bias groups: one replay per
  group for whole images (batched), or one VJP with respect to the scales s per chosen output;
* the top-k singular triplets of A by ARPACK (``scipy.sparse.linalg.svds``) on a matrix-free
  ``LinearOperator``: rmatvec is the VJP; matvec is the bias-free replay A v, which for the affine
  replay equals the JVP exactly (tested) at half its cost.

Shapes: ``in_shape`` = (C, H, W) of the model input, ``out_shape`` = the output without batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from analyzers.linear_scope.footprint import field
from analyzers.linear_scope.replay import Replay

Progress = Callable[[float, str], None]
MEMORY_BOUND = 1 << 28  # bytes of activations a batch of cotangents may take (256 MB)


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

    def rows(self, out_index: torch.Tensor, chunk: int = 0, progress: Progress = _noop) -> torch.Tensor:
        """Rows A^T e_j for flat output indices (R,) -> (R, *in_shape); ``chunk`` 0 = measured.

        A fully-convolutional replay shares one backward among rows whose input fields are disjoint
        (:func:`_compressed`); any other replay runs one batched VJP per chunk of rows."""
        idx = [int(j) for j in torch.as_tensor(out_index).reshape(-1).tolist()]
        out_sp = self.r.out_shape[1:]
        spatial = [tuple(int(v) for v in np.unravel_index(j % int(np.prod(out_sp)), out_sp)) for j in idx]
        return self._compressed([[j] for j in idx], spatial, chunk, progress, "rows")

    def _cotangents(self, sets: list[list[int]]) -> torch.Tensor:
        """(B, *out_shape): cotangent b is 1 at the flat output indices ``sets[b]``."""
        cot = torch.zeros(len(sets), self.n_out, dtype=self.r.x0.dtype, device=self.r.x0.device)
        b = torch.tensor([i for i, s in enumerate(sets) for _ in s], dtype=torch.long)
        j = torch.tensor([j for s in sets for j in s], dtype=torch.long)
        cot.index_put_((b.to(cot.device), j.to(cot.device)), torch.ones(len(j), dtype=cot.dtype, device=cot.device),
                       accumulate=True)
        return cot.reshape(len(sets), *self.r.out_shape)

    def _compressed(self, sets: list[list[int]], spatial: list[tuple], chunk: int, progress: Progress,
                    what: str) -> torch.Tensor:
        """A^T (sum of e_j over each set) for sets of flat output indices sharing one output position each.

        Jacobian compression (Curtis, Powell & Reid 1974): sets whose input fields (``replay.footprint``)
        are disjoint are summed into one cotangent; the gradient restricted to a set's field is exactly that
        set's row (every other row of the group is an exact zero there). Without a footprint every set is
        its own group. Returns (len(sets), *in_shape)."""
        dt, dev = self.r.x0.dtype, self.r.x0.device
        if not sets:
            return torch.zeros(0, *self.r.in_shape, dtype=dt, device=dev)
        fields = [None] * len(sets)
        groups = [[k] for k in range(len(sets))]
        if self.r.footprint is not None and len(sets) > 1:
            fields = [field(self.r.footprint, p, self.r.in_shape[1:]) for p in spatial]
            groups = pack(fields, self.r.in_shape[1:])
        cot = self._cotangents([[j for k in g for j in sets[k]] for g in groups])
        grads = self.rmatmat_measured(cot, chunk, lambda f, _="": progress(0.99 * f, what))
        if len(groups) == len(sets) and all(len(g) == 1 for g in groups) and \
                [g[0] for g in groups] == list(range(len(sets))):
            progress(1.0, what)
            return grads  # nothing shared: the gradients are the rows
        out = torch.zeros(len(sets), *self.r.in_shape, dtype=dt, device=dev)
        for g, members in enumerate(groups):
            for k in members:
                if fields[k] is not None:  # an empty field: the row is exactly zero
                    cut = (slice(None), *fields[k])
                    out[k][cut] = grads[g][cut]
        progress(1.0, what)
        return out

    def rmatmat_measured(self, u: torch.Tensor, chunk: int = 0, progress: Progress = _noop) -> torch.Tensor:
        """:meth:`rmatmat` over a batch in chunks; ``chunk`` 0 = chosen by timing (:func:`measured_chunks`)
        within a memory bound. Chunk 1 calls the VJP directly (vmap's batching costs more than it saves on a
        CPU, where conv backward is compute-bound: sr_cnn.x2 at 64 x 64, 1.6 ms per cotangent alone, 2.5 ms
        in chunks of 8)."""
        def run(part: torch.Tensor) -> torch.Tensor:
            return self.vjp_fn()(part)[0] if len(part) == 1 else self.rmatmat(part)

        if chunk > 0:
            parts = []
            for i in range(0, len(u), chunk):
                parts.append(run(u[i:i + chunk]))
                progress(min(1.0, (i + chunk) / len(u)), "")
            return torch.cat(parts)
        item = self.r.x0.element_size() * (self.n_in + self.n_out) * max(1, len(self.r.steps))
        cap = max(1, min(len(u), MEMORY_BOUND // max(item, 1)))
        return measured_chunks(u, run, cap, self.r.x0.device.type, progress)

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

    def pixel_rows(self, pixels: list[tuple[int, int]], chunk: int = 0) -> torch.Tensor:
        """A^T 1_j for output pixels j = (row, col), all output channels together -> (R, *in_shape)."""
        n_sp = int(np.prod(self.r.out_shape[1:]))
        sets = []
        for pos in pixels:
            flat = int(np.ravel_multi_index(tuple(int(v) for v in pos), self.r.out_shape[1:]))
            sets.append([c * n_sp + flat for c in range(self.r.out_shape[0])])
        return self._compressed(sets, [tuple(int(v) for v in p) for p in pixels], chunk, _noop, "rows")

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


def pack(fields: list, in_sp: tuple) -> list[list[int]]:
    """Greedy first-fit colouring of the fields (slices over the input's spatial axes; None = empty): each
    group's fields are pairwise disjoint (an occupancy grid per group). Fields are placed in raster order of
    their corners, which packs neighbours into alternating groups like a regular tiling."""
    order = sorted(range(len(fields)), key=lambda k: (fields[k] is None, [s.start for s in fields[k] or ()]))
    occupied = np.zeros((0, *in_sp), dtype=bool)
    groups: list[list[int]] = []
    empty = [k for k in order if fields[k] is None]  # an empty field (a zero row) overlaps nothing
    for k in order:
        f = fields[k]
        if f is None:
            continue
        busy = occupied[(slice(None), *f)].any(axis=tuple(range(1, occupied.ndim)))
        free = np.flatnonzero(~busy)
        if free.size:
            g = int(free[0])
        else:
            g = len(occupied)
            occupied = np.concatenate([occupied, np.zeros((1, *in_sp), dtype=bool)])
        while len(groups) <= g:
            groups.append([])
        groups[g].append(k)
        occupied[(g, *f)] = True
    if empty:
        groups = [groups[0] + empty, *groups[1:]] if groups else [empty]
    return groups


def measured_chunks(u: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor], cap: int, device: str,
                    progress: Progress = _noop) -> torch.Tensor:
    """``run`` over ``u`` in chunks whose size is measured, not guessed: 1, 2, 4, ... items (each chunk part of
    the result) until one is more than 3 % slower per item than the best or ``cap`` is reached, then the best.
    The very first chunk (one item) warms up and is not timed. CPU time on the CPU (this process's work,
    not the other processes sharing the cores), wall time elsewhere."""
    clock = time.process_time if device == "cpu" else time.perf_counter
    parts, timings, size, i, first, decided = [], {}, 1, 0, True, False
    while i < len(u):
        s = min(size, len(u) - i)
        t = clock()
        parts.append(run(u[i:i + s]))
        if device == "cuda":
            torch.cuda.synchronize()
        took = clock() - t
        i += s
        progress(i / len(u), "")
        if first or decided or s < size:
            first = False
            continue
        timings[s] = took / s
        best = min(timings, key=timings.get)
        # go on doubling unless clearly (3 %) slower than the best: one doubling's gain is within the noise of a
        # loaded CPU, two doublings' is not
        if (best != s and timings[s] > 1.03 * timings[best]) or s >= cap:
            size, decided = best, True
        else:
            size = min(2 * s, cap)
    return torch.cat(parts)


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
