"""The model zoo: cards, architectures, training recipes for ``make zoo``, and the one weights loader.

``models.zoo`` registers every card (it is the ``workbench.models`` entry point);
``models.weights`` loads and verifies weights for every card; ``models.preprocess`` holds the
card preprocessing; ``models.train`` (``python -m models.train``) trains the local zoo.
"""
