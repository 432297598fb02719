"""Feature transferability (Yosinski, Clune, Bengio & Lipson, NIPS 2014, arXiv:1411.1792) at workbench"""

from analyzers.transferability.analyzer import Transferability

__all__ = ["Transferability"]
