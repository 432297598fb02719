"""Data-set runs on sweep cells: a per-sample analyzer over a data set split into cells of samples (the
runner's chunks: :func:`workbench.runtime.dataset_run.chunk_size`), each cached by content, merged with the
data-set run's own merge. A data-set run killed half-way resumes: the cells of the chunks that finished are
reused, only the others are computed.

A chunk is named by a data id of its own, ``name:i,j,k`` (the data set's index list), when every sample id of
the set is ``name:<index>`` and that list resolves back to the same ids (the built-in sets); a set whose sample
ids cannot be named this way (user folders, files) runs as one cell.
"""

from __future__ import annotations

import re

from workbench.core.result import Result
from workbench.runtime.dataset_run import chunk_size, merge

_INDEXED = re.compile(r"^(?P<name>[A-Za-z0-9_.]+):(?P<index>\d+)$")


def chunk_ids(data_id: str, kind: str, size: int) -> list[str] | None:
    """Data ids of consecutive chunks of ``size`` samples of ``data_id``; None when they cannot be named."""
    from workbench.data.registry import resolve

    _, ids = resolve(data_id, kind)
    found = [_INDEXED.match(i) for i in ids]
    if len(ids) < 2 or not all(found) or len({m.group("name") for m in found}) != 1:
        return None
    name = found[0].group("name")
    starts = list(range(0, len(ids), size))
    if len(starts) > 1 and len(ids) - starts[-1] == 1:
        starts.pop()  # a last chunk of one sample would be a single-sample run: it joins the chunk before
    bounds = list(zip(starts, starts[1:] + [len(ids)], strict=True))
    chunks = [f"{name}:{','.join(m.group('index') for m in found[a:b])}" for a, b in bounds]
    if resolve(chunks[0], kind)[1] != ids[:bounds[0][1]]:  # the set's index list is not its sample ids: do not guess
        return None
    return chunks


class DataSetChunks:
    """``split`` / ``merge`` hooks (workbench/sweep/split.py) of a per-sample analyzer ``cls`` over a data set."""

    def __init__(self, cls, batch_size: int = 32) -> None:
        self.cls, self.size = cls, chunk_size(batch_size)  # the runner's chunks for this batch size

    def split(self, config: dict, seed: int, model: str, data: str | None) -> list[dict]:
        from workbench.core.sample import SAMPLE_KIND_FOR
        from workbench.runtime.session import lookup_card

        card = lookup_card(model)
        data_id = data or card.default_data
        chunks = chunk_ids(data_id, SAMPLE_KIND_FOR.get(card.kind, ""), self.size)
        return [{"params": {}, "seed": seed, "call": "", "data": d} for d in (chunks or [data_id])]

    def merge(self, config: dict, seed: int, parts: list[Result]) -> Result:
        """The data-set run's result from its chunk cells (each a data-set run of one chunk, or one sample)."""
        if len(parts) == 1:
            return parts[0]
        sizes, labels = [], []
        for p in parts:
            ds = p.info.get("dataset") or {}
            n = int(ds.get("n_samples", 1))
            sizes.append(n)
            labels += list(ds.get("labels") or [None] * n)
        return merge(parts, sizes, labels, self.cls)
