"""EEG saliency: Cui et al.'s interpretable CNN explained by its own CAM variant, LRP and Integrated

Exports ``EegSaliency`` (the analyzer) and ``EegSaliencyResult``. Both load on first use, so that reading a saved result
(``Result.load``; the ``workbench.results`` entry point names ``analyzers.eeg_saliency.result:EegSaliencyResult``) imports
the result module only, never torch.
"""

from importlib import import_module

__all__ = ["EegSaliency", "EegSaliencyResult"]
_WHERE = {"EegSaliency": "analyzer", "EegSaliencyResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
