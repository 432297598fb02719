"""Training recipes of the locally trained zoo cards (plain data; ``models.train`` runs them).

A recipe names the architecture, the data set, the optimiser settings and the accuracy the
model must reach on the fixed test split. ``recipe_hash`` also covers the architecture's source,
so editing the recipe or the network makes ``make zoo`` retrain that card.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

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
    # braindecode's EEG architectures (models/eeg_braindecode.py) on the synthetic drowsiness set: Adam, the
    # usual small-set settings; sized so `make zoo` stays within its budget on 2 cores (Deep4Net, 269 k
    # parameters, is an architecture-only card: ~6 min to train here)
    "braindecode.eegnet": {
        "name": "braindecode-adam-v1", "architecture": "EEGNet", "dataset": "eeg_synth.drowsy",
        "seed": 0, "epochs": 15, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.0,
        "max_shift": 0, "target_accuracy": 0.75, "trainer": "braindecode",
    },
    "braindecode.shallow_fbcsp": {
        "name": "braindecode-adam-v1", "architecture": "ShallowFBCSPNet", "dataset": "eeg_synth.drowsy",
        "seed": 0, "epochs": 8, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.0,
        "max_shift": 0, "target_accuracy": 0.85, "trainer": "braindecode",
    },
}


def recipe_hash(card_id: str) -> str:
    """sha256 over the recipe (canonical JSON) and the architectures module's source code."""
    blob = json.dumps(RECIPES[card_id], sort_keys=True) + "\n" + _architectures_source()
    if RECIPES[card_id].get("trainer") == "braindecode":  # the network is braindecode's: its version counts
        from importlib.metadata import version

        blob += Path(__file__).with_name("eeg_braindecode.py").read_text() + version("braindecode")
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
    recipe = IMAGE2IMAGE_RECIPES[card_id]
    source = _architectures_source(recipe["architecture"])
    blob = json.dumps(recipe, sort_keys=True) + "\n" + source
    return hashlib.sha256(blob.encode()).hexdigest()


def _architectures_source(cls_name: str = "") -> str:
    """What ``inspect.getsource`` gives for ``models.architectures`` (or one class of it), read from the
    file instead of importing the module: the zoo's status check then needs no torch (`workbench zoo list`)."""
    text = (Path(__file__).parent / "architectures.py").read_text(encoding="utf-8")
    if not cls_name:
        return text
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    return "".join(text.splitlines(keepends=True)[start - 1:node.end_lineno])
