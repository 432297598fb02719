"""Attribution maps with captum: Integrated Gradients, Saliency, Input x Gradient, Grad-CAM and Occlusion, with
IG's completeness gap and Adebayo et al.'s model-randomization sanity check.

Exports ``Attribution`` (the analyzer) and ``AttributionResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.attribution.result:AttributionResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["Attribution", "AttributionResult"]
_WHERE = {"Attribution": "analyzer", "AttributionResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
