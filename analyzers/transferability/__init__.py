"""Feature transferability (Yosinski, Clune, Bengio & Lipson, NIPS 2014, arXiv:1411.1792) at workbench scale:
the AnB / BnB / AnB+ / BnB+ grid with a random-frozen-features control, plus linear CKA and SVCCA between
layers, LogME and LEEP of candidate sources, and UMAP views of one layer.

Exports ``Transferability`` (the analyzer) and ``TransferabilityResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.transferability.result:TransferabilityResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["Transferability", "TransferabilityResult"]
_WHERE = {"Transferability": "analyzer", "TransferabilityResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
