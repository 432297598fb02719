"""Sweeps: a grid over an analyzer's Config fields, models, data and seeds, run as cells keyed by content
hash and cached on disk (resumable), on one executor interface (in-process, a local process pool, Ray),
aggregated into a :class:`SweepResult`.

    s = wb.sweep("lrp_pruning", model="digits_vgg.sk", grid={"criteria": ["lrp", "weight"]}, seeds=range(3),
                 executor="local", out="out/sweep")

One analyzer call can also be split into its own cells and merged back into its own Result
(``split=True``, ``workbench sweep --split``: transferability's seeds x cuts, a per-sample analyzer's data set
in chunks of samples; see workbench/sweep/split.py).

The package is also the API's ``sweep`` call (``wb.sweep(...)``), like ``workbench.report``: Python binds
the package to the attribute ``workbench.sweep`` once it is imported.
"""

import sys
import types

__all__ = ["SweepResult", "SweepSpec"]


def __getattr__(name: str):
    import importlib

    if name == "SweepResult":
        return importlib.import_module("workbench.sweep.result").SweepResult
    if name == "SweepSpec":
        return importlib.import_module("workbench.sweep.grid").SweepSpec
    raise AttributeError(f"module 'workbench.sweep' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from workbench.api import sweep  # in-memory modules and arrays become session cards there, as in wb.run

        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
