"""Receptive fields: the exact theoretical RF of every layer of any traceable CNN graph, a gradient

Exports ``ReceptiveField`` (the analyzer) and ``ReceptiveFieldResult``. Both load on first use, so that reading a saved result
(``Result.load``; the ``workbench.results`` entry point names ``analyzers.receptive_field.result:ReceptiveFieldResult``) imports
the result module only, never torch.
"""

from importlib import import_module

__all__ = ["ReceptiveField", "ReceptiveFieldResult"]
_WHERE = {"ReceptiveField": "analyzer", "ReceptiveFieldResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
