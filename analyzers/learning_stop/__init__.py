"""Learning-stop detection (Ahmad, Trahan & Islam, "When do CNNs stop learning?", arXiv 2403.02473): train a
fresh copy of a zoo card, record every step the std of each monitored layer's output, and stop once the
rounded per-epoch means stop changing, without validation data.

Exports ``LearningStop`` (the analyzer) and ``LearningStopResult``, both loaded on first use: reading a
saved result (``Result.load``, through the ``workbench.results`` entry point
``analyzers.learning_stop.result:LearningStopResult``) imports the result module only, never torch.
"""

from importlib import import_module

__all__ = ["LearningStop", "LearningStopResult"]
_WHERE = {"LearningStop": "analyzer", "LearningStopResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
