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
    # Cui et al. (TNNLS 2023): Adam lr 1e-3, batch 50, 11 epochs; float32 on CPU instead of float64 on CUDA
    "eeg_compact.synth": {
        "name": "eeg-adam-cui2022-v1", "architecture": "EEGInterpretableCNN", "dataset": "eeg_synth.drowsy",
        "seed": 0, "epochs": 11, "batch_size": 50, "lr": 1e-3, "weight_decay": 0.0,
        "max_shift": 0, "target_accuracy": 0.85, "trainer": "eeg",
        "data_version": "eeg_synth v1, seed 2022",  # bump when workbench/data/eeg_synth.py changes its output
    },
    # Yeom et al.'s pruning toy (their MLP, trained here with the common AdamW/one-cycle loop): 304 steps
    "toy_mlp.moons": {
        "name": "toy2d-adamw-v1", "architecture": "ToyMLP", "dataset": "moons",
        "seed": 0, "epochs": 19, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4,
        "max_shift": 0, "target_accuracy": 0.97,
    },
    "toy_mlp.circles": {
        "name": "toy2d-adamw-v1", "architecture": "ToyMLP", "dataset": "circles",
        "seed": 0, "epochs": 19, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4,
        "max_shift": 0, "target_accuracy": 0.97,
    },
}


def recipe_hash(card_id: str) -> str:
    """sha256 over the recipe (canonical JSON) and the architectures module's source code."""
    from models import architectures

    blob = json.dumps(RECIPES[card_id], sort_keys=True) + "\n" + inspect.getsource(architectures)
    return hashlib.sha256(blob.encode()).hexdigest()


#: Image-to-image cards, trained by ``models.train_image2image`` on random patches of the bundled
#: scikit-image pictures and scored by PSNR on held-out ones; ``min_gain_db`` is how far the model
#: must beat its baseline (bicubic upsampling / the noisy input) or ``make zoo`` fails.
IMAGE2IMAGE_RECIPES: dict[str, dict] = {
    "sr_cnn.x2": {
        "name": "sr-x2-adam-patches-v1", "architecture": "SRCNNx2", "task": "super_resolution",
        "dataset": "skimage", "seed": 0, "steps": 250, "batch_size": 32, "patch": 32, "lr": 4e-3,
        "scale": 2, "baseline": "bicubic", "min_gain_db": 0.2,
    },
    "denoise_cnn.sigma25": {
        "name": "denoise-s25-adam-patches-v1", "architecture": "DenoiseCNN", "task": "denoising",
        "dataset": "skimage", "seed": 0, "steps": 250, "batch_size": 24, "patch": 24, "lr": 4e-3,
        "sigma": 25.0 / 255.0, "baseline": "noisy input", "min_gain_db": 3.0,
    },
}


def image2image_recipe_hash(card_id: str) -> str:
    """sha256 over an image-to-image recipe and the source of its architecture class only (so other cards'
    edits to ``models.architectures`` do not make these retrain)."""
    from models import architectures

    recipe = IMAGE2IMAGE_RECIPES[card_id]
    source = inspect.getsource(getattr(architectures, recipe["architecture"]))
    blob = json.dumps(recipe, sort_keys=True) + "\n" + source
    return hashlib.sha256(blob.encode()).hexdigest()
