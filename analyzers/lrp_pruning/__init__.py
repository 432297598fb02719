"""Pruning by explaining (Yeom et al. 2021): rank units by LRP relevance on a small labelled reference set and
remove the least relevant ones, against Taylor, gradient, weight-magnitude and random criteria.

Exports ``LRPPruning`` (the analyzer) and ``LRPPruningResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.lrp_pruning.result:LRPPruningResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["LRPPruning", "LRPPruningResult"]
_WHERE = {"LRPPruning": "analyzer", "LRPPruningResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
