"""EEG saliency: Cui et al.'s interpretable CNN explained by its own CAM variant, LRP and Integrated"""

from analyzers.eeg_saliency.analyzer import EegSaliency

__all__ = ["EegSaliency"]
