"""Learning-stop detection (Ahmad, Trahan & Islam, "When do CNNs stop learning?", arXiv 2403.02473):"""

from analyzers.learning_stop.analyzer import LearningStop

__all__ = ["LearningStop"]
