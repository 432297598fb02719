"""Attribution maps with captum: Integrated Gradients, Saliency, Input x Gradient,

Exports ``Attribution`` (the analyzer) and ``AttributionResult``. Both load on first use, so that reading a saved result
(``Result.load``; the ``workbench.results`` entry point names ``analyzers.attribution.result:AttributionResult``) imports
the result module only, never torch.
"""

from importlib import import_module

__all__ = ["Attribution", "AttributionResult"]
_WHERE = {"Attribution": "analyzer", "AttributionResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
