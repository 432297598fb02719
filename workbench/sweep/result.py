"""SweepResult: the cells of a sweep aggregated over seeds (mean, sd, count), a per-cell table, and its own
figures. A normal Result (``analyzer = "sweep"``; entry point ``workbench.results: sweep``), so it saves,
loads and goes into a report like any other.

Metric names are made comparable across cells first: a cell's grid values that appear in its metric
names become placeholders (cell ``criteria=lrp, rates=30``: ``acc_lrp_at_30`` -> ``acc_{criteria}_at_{rates}``,
``auc_lrp`` -> ``auc_{criteria}``), the way analyzers name per-setting metrics. Numbers appear as written,
as ``%g`` and with ``.`` -> ``p`` (``33.3`` -> ``33p3``).

Arrays: ``values`` (cells done x metrics) float64, NaN where a cell lacks a metric; ``mean``, ``sd``
(sample sd, ddof=1; 0 for one seed) and ``count`` (groups x metrics), a group being one (model, data,
grid values) over its seeds; ``cell_group`` (cells done,) the group index of each done cell; ``seeds``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re

import numpy as np

from workbench.core.result import Check, Provenance, Result

NAME = "sweep"
_TIMING = re.compile(r"(latency|duration|_ms$|_s$|seconds)")


def _tokens(value) -> list[str]:
    if isinstance(value, bool) or value is None:
        return []
    text = str(value).strip()
    out = [text] if text else []
    try:
        g = f"{float(text):g}"
    except ValueError:
        return out
    return list(dict.fromkeys(out + [g, g.replace(".", "p")]))


def normalize(name: str, params: dict) -> str:
    """``name`` with this cell's grid values replaced by ``{key}`` placeholders (longest values first)."""
    pairs = sorted(((k, t) for k, v in params.items() for t in _tokens(v)), key=lambda kt: -len(kt[1]))
    for key, token in pairs:
        name = re.sub(rf"(^|_){re.escape(token)}(?=_|$)", lambda m, k=key: m.group(1) + "{" + k + "}", name)
    return name


def is_timing(metric: str) -> bool:
    """Metrics that are measurements of time (not bit-reproducible across runs)."""
    return bool(_TIMING.search(metric))


def _label(model: str, data, params: dict, models: int, datas: int) -> str:
    parts = ([model] if models > 1 else []) + ([str(data)] if datas > 1 else [])
    return " ".join(parts + [f"{k}={v}" for k, v in params.items()]) or "all"


def _stats(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """Per-group mean, sample sd (0 for one value) and count of the finite values, column by column."""
    shape = (n_groups, values.shape[1])
    mean, sd, count = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    for g in range(n_groups):
        block = values[groups == g]
        for j in range(values.shape[1]):
            col = block[:, j][np.isfinite(block[:, j])]
            count[g, j] = len(col)
            if len(col):
                mean[g, j] = col.mean()
                sd[g, j] = col.std(ddof=1) if len(col) > 1 else 0.0
    return mean, sd, count


def _headline(names: list[str], grid: dict, values: np.ndarray, asked: str) -> str:
    if asked and asked in names:
        return asked
    varying = [n for j, n in enumerate(names) if not is_timing(n)
               and len({v for v in values[:, j].tolist() if math.isfinite(v)}) > 1]
    pool = varying or [n for n in names if not is_timing(n)] or names
    if not pool:
        return ""
    return max(pool, key=lambda n: (sum("{" + k + "}" in n for k in grid), -pool.index(n)))


class SweepResult(Result):
    """The aggregate of a sweep; ``info`` holds the spec, groups, cells and how it ran."""

    @classmethod
    def build(cls, spec: dict, cells: list, results: dict, failures: dict, run: dict) -> SweepResult:
        """Aggregate ``results`` (cell key -> Result) over the ``cells`` of ``spec`` (SweepSpec.to_json())."""
        done = [c for c in cells if c.key in results]
        models, datas = list(dict.fromkeys(c.model for c in cells)), list(dict.fromkeys(c.data for c in cells))
        rows = [{normalize(k, c.params): v for k, v in results[c.key].metrics.items()} for c in done]
        names = sorted({k for r in rows for k in r})
        values = np.array([[r.get(n, np.nan) for n in names] for r in rows], dtype=np.float64).reshape(len(rows),
                                                                                                        len(names))
        gkeys = list(dict.fromkeys((c.model, c.data, tuple(c.params.items())) for c in done))
        index = {g: i for i, g in enumerate(gkeys)}
        cell_group = np.array([index[(c.model, c.data, tuple(c.params.items()))] for c in done], dtype=np.int64)
        mean, sd, count = _stats(values, cell_group, len(gkeys))
        headline = _headline(names, spec.get("grid", {}), values, spec.get("metric", ""))
        groups = [{"label": _label(m, d, dict(p), len(models), len(datas)), "model": m, "data": d,
                   "params": dict(p)} for m, d, p in gkeys]
        metrics = {"cells_done": len(done), "cells_failed": len(failures), "cells_total": len(cells)}
        if headline:
            j = names.index(headline)
            metrics.update({f"{headline} [{g['label']}]": float(mean[i, j]) for i, g in enumerate(groups)})
        status = {c.key: "done" if c.key in results else "failed" if c.key in failures else "pending"
                  for c in cells}
        info = {"analyzer": spec.get("analyzer", ""), "spec": spec, "grid": spec.get("grid", {}),
                "seeds": spec.get("seeds", []), "models": models, "metric_names": names, "headline": headline,
                "groups": groups, "run": run,
                "cells": [{"key": c.key, "model": c.model, "data": c.data, "params": c.params, "seed": c.seed,
                           "status": status[c.key],
                           "duration_s": results[c.key].provenance.duration_s if c.key in results else None}
                          for c in cells],
                "failed": {next(c.label() for c in cells if c.key == k): m for k, m in failures.items()}}
        bad = sum(not ch.passed for c in done for ch in results[c.key].checks)
        checks = [Check("cells_complete", not failures and len(done) == len(cells), len(done), len(cells),
                        f"{len(done)} of {len(cells)} cells finished" + (f", {len(failures)} failed" if failures
                                                                         else "")),
                  Check("cell_checks", bad == 0, bad, 0, "failing checks summed over the finished cells")]
        first = results[done[0].key].provenance if done else Provenance()
        prov = Provenance(model_id=", ".join(models), weights_sha256=first.weights_sha256 if len(models) == 1 else "",
                          data_id=", ".join(str(d or "") for d in datas), seed=min(spec.get("seeds") or [0]),
                          device=run.get("device", first.device), dtype=first.dtype, versions=first.versions,
                          duration_s=float(run.get("wall_s", 0.0)),
                          created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        arrays = {"values": values, "mean": mean, "sd": sd, "count": count, "cell_group": cell_group,
                  "seeds": np.array([c.seed for c in done], dtype=np.int64)}
        return cls(NAME, model=", ".join(m or "(none)" for m in models), data=prov.data_id,
                   config=spec.get("fixed", {}), metrics=metrics, checks=checks, arrays=arrays, info=info,
                   provenance=prov)

    @property
    def title(self) -> str:
        n = int(self.metrics.get("cells_total", 0))
        return f"sweep · {self.info.get('analyzer', '')} · {self.model} · {n} cells"

    def summary(self) -> str:
        grid = " x ".join(f"{k} ({len(v)})" for k, v in self.info.get("grid", {}).items())
        seeds = self.info.get("seeds", [])
        return (f"{self.info.get('analyzer', '')} swept over {grid or 'no grid'} x {len(seeds)} seed(s) on "
                f"{self.model}: {int(self.metrics.get('cells_done', 0))} of {int(self.metrics.get('cells_total', 0))} "
                f"cells finished. Curves and heat maps show `{self.info.get('headline', '')}`, mean over seeds, "
                "with its standard deviation.")

    def table(self) -> list[dict]:
        """One row per group: label, seeds, and mean / sd of every metric."""
        names = self.info.get("metric_names", [])
        mean, sd, count = self.arrays.get("mean"), self.arrays.get("sd"), self.arrays.get("count")
        return [{"group": g["label"], "seeds": int(count[i].max()) if count.size else 0,
                 **{f"{n} mean": float(mean[i, j]) for j, n in enumerate(names)},
                 **{f"{n} sd": float(sd[i, j]) for j, n in enumerate(names)}}
                for i, g in enumerate(self.info.get("groups", []))]

    def cell_table(self) -> list[dict]:
        """One row per cell: grid values, seed, status and the headline metric."""
        names, head = self.info.get("metric_names", []), self.info.get("headline", "")
        values, j, k, rows = self.arrays.get("values"), names.index(head) if head in names else -1, 0, []
        for c in self.info.get("cells", []):
            row = {**c["params"], "model": c["model"], "seed": c["seed"], "status": c["status"], "key": c["key"]}
            if c["status"] == "done":
                row[head or "value"] = float(values[k, j]) if j >= 0 else None
                k += 1
            rows.append(row)
        return rows

    def figures(self) -> list:
        from workbench.sweep.figures import sweep_figures

        return sweep_figures(self)


Result.classes.setdefault(NAME, SweepResult)
