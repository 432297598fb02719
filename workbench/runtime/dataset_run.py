"""Data-set runs: a per-sample analyzer over every sample a data id names, in chunks.

The runner (:func:`workbench.runtime.runner.run`) hands a per-sample analyzer (``Analyzer.per_sample``)
here when its data id names more than one sample. The sample ids are resolved once without decoding;
each chunk is decoded, preprocessed and run through the runner's guarded call (``run_chunk``) with its
share of the progress bar and the run's cancel token, then dropped. The chunk results are merged:

* arrays and info lists with a sample axis are concatenated along it: the analyzer may name them
  (``sample_arrays``: patterns of those whose first axis runs over samples; ``sample_axes``: pattern ->
  axis for those whose sample axis is another), else those whose length equals the chunk's sample count
  in every chunk;
  other arrays must be equal across chunks and are kept once (those that differ are dropped and listed),
  unless the analyzer's ``aggregate`` rule for the name is "first" (the first chunk's is kept);
* metrics and check values combine by the analyzer's ``aggregate`` rules (name or fnmatch pattern ->
  "mean" weighted by samples (default), "max", "min", "sum" or "first");
* a check holds over the set only if it held on every chunk;
* every per-sample 1-D array adds set metrics: floats ``<name>_mean``, ``<name>_sd`` and, when every
  sample has a label, ``<name>_mean_class_<k>``; booleans ``<name>_fraction`` (and per class).

Chunks see the same seed, so seeded pieces (a randomized control model) are the same for every chunk.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from workbench.core.errors import InputTooLargeError
from workbench.core.result import Check, Result
from workbench.runtime.context import RunContext

RULES = ("mean", "max", "min", "sum", "first")
#: bytes the merged per-sample arrays of one data-set run may hold (they are kept in memory and saved)
MAX_RESULT_BYTES = 2 * 1024**3
#: samples per chunk (at least the run's batch size): large enough to amortize per-chunk work
#: (forward pass, model copies), small enough that one chunk's inputs and maps stay small
CHUNK_SAMPLES = 128
#: samples per analyzer batch inside a chunk on the CPU, where large batches are memory-bound, not faster:
#: IG (64 steps, 16 per forward) on digits_vgg.sk, 128 test digits, one thread, CPU seconds of 3 interleaved
#: rounds: 32 per batch (512 rows per forward) 9-12 s; 8 per batch 8.4-9.5; 4 per batch 7.2-9.5; a plain
#: captum loop (64 rows) 7.8-10.8. On a GPU the run's batch size stands (there batches pay)
CPU_BATCH = 4


@dataclass
class Plan:
    """What a data-set run needs from the runner. ``ids``: sample ids in order; ``labels``: their class
    indices (None unknown), filled chunk by chunk; ``run_chunk(ids, ctx) -> (Result, labels)`` decodes,
    runs and guards one chunk; ``chunk``: samples per chunk."""

    ids: list[str]
    run_chunk: Callable[[list[str], RunContext], tuple[Result, list]]
    chunk: int = CHUNK_SAMPLES
    labels: list = field(default_factory=list)


def chunk_size(batch_size: int) -> int:
    return max(int(batch_size), CHUNK_SAMPLES)


def _sub_context(ctx: RunContext, start: float, stop: float, label: str) -> RunContext:
    """A context for one chunk: the run's device, seed, batch size and cancel token, progress mapped
    onto [start, stop] of the whole run."""
    batch = min(ctx.batch_size, CPU_BATCH) if ctx.device == "cpu" else ctx.batch_size
    return RunContext(
        device=ctx.device, dtype=ctx.dtype, seed=ctx.seed, batch_size=batch,
        memory_budget_mb=ctx.memory_budget_mb, cancel=ctx.cancel,
        on_progress=lambda f, m="": ctx.progress(start + (stop - start) * f, f"{label} {m}".strip()))


def run_chunks(plan: Plan, ctx: RunContext, cls) -> Result:
    """Run ``plan`` chunk by chunk and merge (see the module docstring). Raises Cancelled between and
    inside chunks once the token is set; InputTooLargeError when the merged arrays would be too big."""
    n, size = len(plan.ids), max(1, plan.chunk)
    starts = list(range(0, n, size))
    results, sizes, labels = [], [], []
    for k, a in enumerate(starts):
        ctx.check_cancel()
        ids = plan.ids[a:a + size]
        sub = _sub_context(ctx, a / n, min(1.0, (a + len(ids)) / n), f"samples {a + 1}-{a + len(ids)}/{n}")
        result, chunk_labels = plan.run_chunk(ids, sub)
        ctx.batch_size = sub.batch_size  # keep what fit after an out-of-memory back-off
        results.append(result)
        sizes.append(len(ids))
        labels += list(chunk_labels)
        if k == 0:
            _check_size(result, len(ids), n)
    plan.labels = labels
    return merge(results, sizes, labels, cls)


def _check_size(first: Result, n_first: int, n: int) -> None:
    per_sample = sum(a.nbytes for a in first.arrays.values()) / max(1, n_first)
    if per_sample * n > MAX_RESULT_BYTES:
        raise InputTooLargeError(f"{n} samples would keep {per_sample * n / 1e9:.1f} GB of per-sample arrays, "
                                 f"over the {MAX_RESULT_BYTES / 1e9:.0f} GB limit", "select fewer samples (e.g. :0-99)")


def rule_for(cls, name: str) -> str:
    """The aggregation rule the analyzer declares for a metric or check ``name`` (default "mean")."""
    for pattern, rule in getattr(cls, "aggregate", {}).items():
        if fnmatch.fnmatchcase(name, pattern):
            return rule
    return "mean"


def combine(values: list[float], weights: list[int], rule: str) -> float:
    """One number from per-chunk values (NaN-free) under ``rule``; weights are the chunk sizes."""
    v = np.asarray(values, dtype=np.float64)
    if rule == "max":
        return float(v.max())
    if rule == "min":
        return float(v.min())
    if rule == "sum":
        return float(v.sum())
    if rule == "first":
        return float(v[0])
    return float(np.average(v, weights=np.asarray(weights, dtype=np.float64)))


def sample_axis(cls, name: str, parts: list, sizes: list[int]) -> int | None:
    """The axis of ``name`` that runs over samples (None: not per sample): declared by the analyzer
    (``sample_axes`` for arrays whose sample axis is not the first, ``sample_arrays``), else inferred."""
    for pattern, axis in getattr(cls, "sample_axes", {}).items():
        if fnmatch.fnmatchcase(name, pattern):
            return axis
    declared = getattr(cls, "sample_arrays", ())
    if declared:
        return 0 if any(fnmatch.fnmatchcase(name, p) for p in declared) else None
    return 0 if all(len(p) == s for p, s in zip(parts, sizes, strict=True)) else None


def _merge_arrays(results: list[Result], sizes: list[int], cls) -> tuple[dict, dict, list[str]]:
    """(merged arrays, per-sample ones, names dropped because they differ between chunks)."""
    merged, sample, dropped = {}, {}, []
    for name in results[0].arrays:
        parts = [r.arrays.get(name) for r in results]
        axis = None if any(p is None or p.ndim == 0 for p in parts) else sample_axis(cls, name, parts, sizes)
        if any(p is None for p in parts):
            dropped.append(name)
        elif axis is not None:
            merged[name] = np.concatenate(parts, axis=axis)
            if axis == 0:
                sample[name] = merged[name]
        elif rule_for(cls, name) == "first" or all(
                p.shape == parts[0].shape and np.array_equal(p, parts[0], equal_nan=True) for p in parts):
            merged[name] = parts[0]  # the analyzer keeps the first chunk's (e.g. its first sample's full views)
        else:
            dropped.append(name)
    return merged, sample, dropped


def _merge_info(results: list[Result], sizes: list[int], cls) -> dict:
    """Info of the first chunk, with its per-sample lists (declared or inferred) concatenated over chunks."""
    info = dict(results[0].info)
    for key in results[0].info:
        parts = [r.info.get(key) for r in results]
        if all(isinstance(p, list) for p in parts) and sample_axis(cls, key, parts, sizes) == 0:
            info[key] = [x for p in parts for x in p]
    return info


def _merge_checks(results: list[Result], sizes: list[int], cls) -> list[Check]:
    names = list(dict.fromkeys(c.name for r in results for c in r.checks))
    out = []
    for name in names:
        got = [(c, s) for r, s in zip(results, sizes, strict=True) for c in r.checks if c.name == name]
        held = sum(c.passed for c, _ in got)
        values = [(c.value, s) for c, s in got if isinstance(c.value, (int, float)) and np.isfinite(c.value)]
        value = combine([v for v, _ in values], [s for _, s in values], rule_for(cls, name)) if values else None
        first = got[0][0]
        note = f" [held on {held}/{len(got)} chunks of the data set]" if len(got) > 1 else ""
        out.append(Check(name, held == len(got), value, first.threshold, first.message + note))
    return out


def set_metrics(sample: dict, labels: list) -> dict:
    """Mean / sd / per-class metrics of every per-sample 1-D float or bool array (see the module docstring)."""
    out = {}
    y = np.asarray(labels, dtype=np.int64) if labels and all(v is not None for v in labels) else None
    for name, a in sample.items():
        if a.ndim != 1 or a.dtype.kind not in "fb" or len(a) == 0:
            continue
        v = a.astype(np.float64)
        stat = "fraction" if a.dtype.kind == "b" else "mean"
        out[f"{name}_{stat}"] = float(v.mean())
        if stat == "mean":
            out[f"{name}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        if y is not None and len(y) == len(v):
            for k in np.unique(y).tolist():
                out[f"{name}_{stat}_class_{k}"] = float(v[y == k].mean())
    return out


def merge(results: list[Result], sizes: list[int], labels: list, cls) -> Result:
    """One Result of the analyzer's class from chunk results (see the module docstring)."""
    arrays, sample, dropped = _merge_arrays(results, sizes, cls)
    metrics = {}
    for name in dict.fromkeys(k for r in results for k in r.metrics):
        got = [(r.metrics[name], s) for r, s in zip(results, sizes, strict=True)
               if name in r.metrics and np.isfinite(r.metrics[name])]
        metrics[name] = combine([v for v, _ in got], [s for _, s in got], rule_for(cls, name)) if got \
            else float("nan")
    metrics.update(set_metrics(sample, labels))
    metrics["n_samples"] = float(sum(sizes))
    info = _merge_info(results, sizes, cls)
    info["dataset"] = {"n_samples": int(sum(sizes)), "chunks": len(results), "chunk_sizes": sizes,
                       "sample_arrays": sorted(sample), "dropped_arrays": dropped,
                       "labels": [None if v is None else int(v) for v in labels]}
    klass = type(results[0])
    return klass(results[0].analyzer, metrics=metrics, checks=_merge_checks(results, sizes, cls), arrays=arrays,
                 info=info)
