"""CNN interpretability workbench. The Python API (``import workbench as wb``):

    wb.run(analyzer, model=..., data=..., **config) -> Result   # zoo ids or your own nn.Module
    wb.report([r1, r2], "report.html")
    wb.sweep("lrp_pruning", model="digits_vgg.sk", grid={"criteria": ["lrp", "weight"]}, seeds=range(3))
    wb.zoo(), wb.analyzers(), wb.weights_sha256(module)

The names are loaded on first use, so importing a sub-package (the CLI, the app) does not pull in the runtime.
"""

from __future__ import annotations

__all__ = ["analyzers", "report", "run", "sweep", "weights_sha256", "zoo"]


def __getattr__(name: str):
    import importlib

    if name == "report":  # the package workbench.report is callable: wb.report(results, path)
        return importlib.import_module("workbench.report")
    if name in __all__:
        return getattr(importlib.import_module("workbench.api"), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
