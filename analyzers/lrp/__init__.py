"""Layer-wise relevance propagation (zennit) with a conservation ledger.

Exports ``LRP`` (the analyzer) and ``LRPResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.lrp.result:LRPResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["LRP", "LRPResult"]
_WHERE = {"LRP": "analyzer", "LRPResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
