"""Floor 1: the contracts every other part of the workbench builds on."""

from workbench.core.analyzer import (
                                     Analyzer,
                                     DataBatch,
                                     ModelHandle,
                                     get_analyzer,
                                     list_analyzers,
                                     register_analyzer,
)
from workbench.core.cards import ModelCard, get_card, list_cards, register_card, register_card_factory
from workbench.core.config import option
from workbench.core.errors import WorkbenchError
from workbench.core.result import Check, Provenance, Result

__all__ = ["Analyzer", "Check", "DataBatch", "ModelCard", "ModelHandle", "Provenance", "Result",
           "WorkbenchError", "get_analyzer", "get_card", "list_analyzers", "list_cards", "option",
           "register_analyzer", "register_card", "register_card_factory"]
