"""EEG saliency: Cui et al.'s interpretable CNN explained by its own CAM variant, LRP and Integrated Gradients,
checked against planted ground truth, with a randomization control, a frequency view, the BatchNorm trap
made visible, and the leave-one-subject-out protocol as an option.

Exports ``EegSaliency`` (the analyzer) and ``EegSaliencyResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.eeg_saliency.result:EegSaliencyResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["EegSaliency", "EegSaliencyResult"]
_WHERE = {"EegSaliency": "analyzer", "EegSaliencyResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
