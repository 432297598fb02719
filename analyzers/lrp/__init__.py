"""Layer-wise relevance propagation (zennit) with a conservation ledger.

Exports ``LRP`` (the analyzer) and ``LRPResult``. Both load on first use, so that reading a saved result
(``Result.load``; the ``workbench.results`` entry point names ``analyzers.lrp.result:LRPResult``) imports
the result module only, never torch.
"""

from importlib import import_module

__all__ = ["LRP", "LRPResult"]
_WHERE = {"LRP": "analyzer", "LRPResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
