"""Training recipes of the locally trained zoo cards (plain data; ``models.train`` runs them).

A recipe names the architecture, the data set, the optimiser settings and the accuracy the
model must reach on the fixed test split. ``recipe_hash`` also covers the architecture's source,
so editing the recipe or the network makes ``make zoo`` retrain that card.
"""

from __future__ import annotations

import hashlib
import inspect
import json

RECIPES: dict[str, dict] = {
    "digits_vgg.sk": {
        "name": "digits-adam-shift-v1", "architecture": "DigitsVGG", "dataset": "digits",
        "seed": 0, "epochs": 12, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4,
        "max_shift": 2, "target_accuracy": 0.95,
    },
    "digits_resnet.sk": {
        "name": "digits-adam-shift-v1", "architecture": "DigitsResNet", "dataset": "digits",
        "seed": 0, "epochs": 12, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4,
        "max_shift": 2, "target_accuracy": 0.95,
    },
    "mnist1d_cnn.default": {
        "name": "mnist1d-adam-v1", "architecture": "MNIST1DCNN", "dataset": "mnist1d",
        "seed": 0, "epochs": 30, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4,
        "max_shift": 0, "target_accuracy": 0.85,
    },
}


def recipe_hash(card_id: str) -> str:
    """sha256 over the recipe (canonical JSON) and the architectures module's source code."""
    from models import architectures

    blob = json.dumps(RECIPES[card_id], sort_keys=True) + "\n" + inspect.getsource(architectures)
    return hashlib.sha256(blob.encode()).hexdigest()
