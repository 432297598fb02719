"""Attribution maps with captum: Integrated Gradients, Saliency, Input x Gradient,"""

from analyzers.attribution.analyzer import Attribution

__all__ = ["Attribution"]
