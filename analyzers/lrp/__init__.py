"""Layer-wise relevance propagation (zennit) with a conservation ledger."""

from analyzers.lrp.analyzer import LRP

__all__ = ["LRP"]
