"""Learning-stop detection (Ahmad, Trahan & Islam, "When do CNNs stop learning?", arXiv 2403.02473):

Exports ``LearningStop`` (the analyzer) and ``LearningStopResult``. Both load on first use, so that reading a saved result
(``Result.load``; the ``workbench.results`` entry point names ``analyzers.learning_stop.result:LearningStopResult``) imports
the result module only, never torch.
"""

from importlib import import_module

__all__ = ["LearningStop", "LearningStopResult"]
_WHERE = {"LearningStop": "analyzer", "LearningStopResult": "result"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
