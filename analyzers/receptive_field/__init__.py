"""Receptive fields: the exact theoretical RF of every layer of any traceable CNN graph, a gradient"""

from analyzers.receptive_field.analyzer import ReceptiveField

__all__ = ["ReceptiveField"]
