"""CNN interpretability workbench. The Python API (``import workbench as wb``):

    wb.run(analyzer, model=..., data=..., **config) -> Result   # zoo ids or your own nn.Module
    wb.report([r1, r2], "report.html")
    wb.zoo(), wb.analyzers()

The names are loaded on first use, so importing a sub-package (the CLI, the app) does not pull in the runtime.
"""

from __future__ import annotations

__all__ = ["analyzers", "report", "run", "zoo"]


def __getattr__(name: str):
    if name in __all__:
        from workbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
