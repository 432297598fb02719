"""Pruning by explaining (Yeom et al. 2021): rank units by LRP relevance on a small labelled reference"""

from analyzers.lrp_pruning.analyzer import LRPPruning

__all__ = ["LRPPruning"]
