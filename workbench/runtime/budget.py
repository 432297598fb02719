"""The memory budget of one run: what its data will take, estimated and checked before the work.

A small file can name a lot of data (a 0.4 MB compressed ``.mat`` holds 5000 EEG windows, 230 MB
decoded), and a per-sample analyzer keeps arrays for every sample. What a run's data takes grows with the
number of samples ``n``; the analyzer's working memory per batch does not (batches stay small). So:

* before anything is computed: ``n x`` (decoded sample + preprocessed input + display copy), measured on
  the first sample, must fit :attr:`RunContext.memory_budget_mb`;
* a data-set run (per-sample analyzer, many samples; chunk by chunk in
  :mod:`workbench.runtime.dataset_run`) checks again after its first chunk, when the bytes it keeps per
  sample are known: ``n x (input + KEEP_COPIES x kept)``.

Over the budget the run is refused with one line naming the budget, how many samples fit and how to
raise it (``--memory-budget-mb``, ``WORKBENCH_MEMORY_BUDGET_MB``, ``RunContext.memory_budget_mb``).
"""

from __future__ import annotations

import numpy as np

from workbench.core.errors import InputTooLargeError, WorkbenchError

#: copies of the kept per-sample arrays alive at once in a data-set run: every chunk's Result until the
#: merge, the concatenated arrays, and the merged Result's own copy (``Result.set_array`` copies). Measured
#: (tracemalloc) on LRP over 5000 EEG windows: 0.69 GB kept, 2.2 GB peak above the decoded input = 3.2 x
KEEP_COPIES = 3


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def input_bytes(sample, batch) -> int:
    """Bytes one sample holds decoded (``sample.array``) plus its model-ready input and display copy
    (``batch``: the :class:`DataBatch` of that one sample)."""
    x = batch.x
    prepared = int(x.numel()) * int(x.element_size()) if hasattr(x, "numel") else np.asarray(x).nbytes
    return int(np.asarray(sample.array).nbytes) + prepared + int(np.asarray(batch.display).nbytes)


def kept_bytes(result, n: int) -> float:
    """Bytes per sample of the arrays a chunk's Result keeps (``n`` samples in the chunk)."""
    return sum(a.nbytes for a in result.arrays.values()) / max(1, n)


def _with_scheme(data_id: str) -> str:
    """A bare file path -> its data id (``/x/rec.mat`` -> ``edf:/x/rec.mat``), which takes a selector."""
    from workbench.data.paths import path_id

    head = data_id.partition(":")[0]
    try:
        return path_id(data_id) if ("/" in head or "." in head) else data_id
    except WorkbenchError:
        return data_id


def check(budget_mb: int, n: int, per_sample: float, data_id: str, what: str) -> None:
    """InputTooLargeError when ``n`` samples at ``per_sample`` bytes each exceed ``budget_mb``."""
    budget = int(budget_mb) * 2**20
    need = n * per_sample
    if need <= budget:
        return
    fit = int(budget // max(per_sample, 1.0))
    named = _with_scheme(data_id)
    pick = f"e.g. {named}:0-{fit - 1}" if fit > 1 and named.count(":") == 1 else "a smaller selection"
    raise InputTooLargeError(
        f"{n} samples of {data_id} would take about {_mb(need)} ({what}), over this run's memory budget of "
        f"{_mb(budget)}",
        f"select at most {fit} samples ({pick}), or raise the budget with --memory-budget-mb "
        "(WORKBENCH_MEMORY_BUDGET_MB; RunContext.memory_budget_mb in Python) if the machine has the memory")
