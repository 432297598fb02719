"""Receptive fields: the exact theoretical RF of every layer of any traceable CNN graph, a gradient probe that
cross-checks it, the effective RF (Luo et al. 2016) with RepLKNet's high-contribution area ratio (Ding et
al. 2022), and Luo's sqrt(n) growth-law experiment.

Exports ``ReceptiveField`` (the analyzer) and ``ReceptiveFieldResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.receptive_field.result:ReceptiveFieldResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["ReceptiveField", "ReceptiveFieldResult"]
_WHERE = {"ReceptiveField": "analyzer", "ReceptiveFieldResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
