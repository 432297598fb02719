"""``python -m models.train [--force] [--only ID]`` (= ``make zoo``): train the local zoo cards.

Each card in ``models.recipes.RECIPES`` is trained on CPU with a fixed seed on its data set's
fixed train split, preprocessed by the card's own batched preprocessing, then scored on the
fixed test split. Weights go to ``<zoo>/<card_id>.safetensors`` and their sha256, recipe, seed,
test accuracy, date, time and parameter count to ``<zoo>/manifest.json``. A card whose manifest
entry matches its recipe hash and whose file matches its sha256 is skipped ("up to date").
Exits 1 when a model misses its accuracy target (its weights are then not written).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

import torch
from torch import nn

from models import architectures
from models.preprocess import digits_batch, mnist1d_batch, vector_batch
from models.recipes import IMAGE2IMAGE_RECIPES, RECIPES, recipe_hash
from models.train_image2image import build as build_image2image
from models.weights import file_sha256, read_manifest, write_manifest, zoo_weights_path
from workbench.data.builtin import TOY2D_SETS
from workbench.data.registry import dataset_arrays

TRAIN_HPARAMS = ("epochs", "batch_size", "lr", "weight_decay", "max_shift")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_split(dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-ready (x, y) of a fixed split: digits (N, 1, 32, 32), mnist1d (N, 1, 40), moons/circles (N, 2);
    y int64."""
    x, y = dataset_arrays(dataset, split)
    if dataset == "eeg_synth.drowsy":  # EEG windows (N, 30, 384)
        from models.preprocess import eeg_batch

        return torch.from_numpy(eeg_batch(x)), torch.from_numpy(y)
    x = digits_batch(x) if dataset == "digits" else vector_batch(x) if dataset in TOY2D_SETS else mnist1d_batch(x)
    return torch.from_numpy(x), torch.from_numpy(y)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each sample by up to ``max_shift`` pixels (samples) per axis, filling with the
    background value (the batch minimum: -1 for digits). (N, C, *S) -> same shape."""
    if max_shift <= 0:
        return x
    spatial = x.shape[2:]
    pad = [max_shift] * (2 * len(spatial))
    padded = torch.nn.functional.pad(x, pad, value=float(x.min()))
    offsets = torch.randint(0, 2 * max_shift + 1, (x.shape[0], len(spatial)), generator=gen)
    out = torch.empty_like(x)
    for i, off in enumerate(offsets.tolist()):
        index = tuple(slice(o, o + n) for o, n in zip(off, spatial, strict=True))
        out[i] = padded[(i, slice(None), *index)]
    return out


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on model-ready ``x`` (N, ...) and labels (N,)."""
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def train_one(card_id: str, recipe: dict) -> tuple[nn.Module, float, float]:
    """Train one recipe from its seed; returns (model in eval mode, test accuracy, seconds)."""
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    xtr, ytr = load_split(recipe["dataset"], "train")
    xte, yte = load_split(recipe["dataset"], "test")
    model = getattr(architectures, recipe["architecture"])()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    steps = recipe["epochs"] * -(-len(ytr) // recipe["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(1, recipe["epochs"] + 1):
        model.train()
        perm, total = torch.randperm(len(ytr), generator=gen), 0.0
        for batch in perm.split(recipe["batch_size"]):
            loss = loss_fn(model(random_shift(xtr[batch], recipe["max_shift"], gen)), ytr[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        acc = accuracy(model, xte, yte)
        log(f"{card_id} epoch {epoch}/{recipe['epochs']}: loss {total / len(ytr):.4f}, "
            f"test accuracy {acc:.4f} ({time.perf_counter() - start:.1f} s)")
    return model, accuracy(model, xte, yte), time.perf_counter() - start


def train_eeg(card_id: str, recipe: dict) -> tuple[nn.Module, float, float]:
    """Train an EEG recipe (models.eeg_fit: the paper's Adam loop, frozen BatchNorm statistics) on the
    synthetic set's train subjects; returns (model in eval mode, test accuracy, seconds)."""
    from models.eeg_fit import fit
    from models.preprocess import eeg_batch

    if recipe.get("trainer") == "braindecode":
        from models.eeg_braindecode import fit

    xtr, ytr = dataset_arrays(recipe["dataset"], "train")
    xte, yte = dataset_arrays(recipe["dataset"], "test")
    start = time.perf_counter()
    model = fit(eeg_batch(xtr), ytr, seed=recipe["seed"], epochs=recipe["epochs"], lr=recipe["lr"],
                batch_size=recipe["batch_size"], weight_decay=recipe["weight_decay"],
                architecture=recipe["architecture"])
    acc = accuracy(model, torch.from_numpy(eeg_batch(xte)), torch.from_numpy(yte))
    log(f"{card_id}: {recipe['epochs']} epochs, test accuracy {acc:.4f} ({time.perf_counter() - start:.1f} s)")
    return model, acc, time.perf_counter() - start


def up_to_date(card_id: str, manifest: dict) -> bool:
    entry, path = manifest["cards"].get(card_id), zoo_weights_path(card_id)
    return (isinstance(entry, dict) and entry.get("recipe_hash") == recipe_hash(card_id)
            and path.exists() and file_sha256(path) == entry.get("sha256"))


def save(card_id: str, recipe: dict, model: nn.Module, acc: float, seconds: float) -> dict:
    """Write the safetensors file and return its manifest entry."""
    from safetensors.torch import save_file

    path = zoo_weights_path(card_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    # one metadata key: safetensors writes a map's keys in hash order, so two would make the bytes vary
    save_file(state, str(path), metadata={"workbench": f"{card_id} recipe {recipe_hash(card_id)}"})
    return {
        "file": path.name, "sha256": file_sha256(path), "architecture": recipe["architecture"],
        "recipe": {"name": recipe["name"], "dataset": recipe["dataset"],
                   "hyperparameters": {k: recipe[k] for k in TRAIN_HPARAMS}},
        "recipe_hash": recipe_hash(card_id), "seed": recipe["seed"], "test_accuracy": round(acc, 6),
        "target_accuracy": recipe["target_accuracy"], "test_split": f"{recipe['dataset']}:test",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "train_seconds": round(seconds, 2), "params": int(sum(p.numel() for p in model.parameters())),
        "torch": torch.__version__,
    }


def build_zoo(card_ids: list[str], force: bool = False) -> list[str]:
    """Train every card that is not up to date; returns the failure messages (empty: success)."""
    failures = []
    for card_id in card_ids:
        if card_id in IMAGE2IMAGE_RECIPES:  # scored by PSNR, not accuracy: models.train_image2image
            failures += build_image2image(card_id, force=force, log=log)
            continue
        recipe = RECIPES[card_id]
        if not force and up_to_date(card_id, read_manifest()):
            print(f"{card_id}: up to date")
            continue
        model, acc, seconds = (train_eeg if recipe.get("trainer") in ("eeg", "braindecode") else train_one)(
            card_id, recipe)
        if acc < recipe["target_accuracy"]:
            failures.append(f"{card_id}: test accuracy {acc:.4f} is below the target "
                            f"{recipe['target_accuracy']:.2f}; weights not written")
            continue
        entry = save(card_id, recipe, model, acc, seconds)
        manifest = read_manifest()
        manifest["format"] = 1
        manifest["cards"][card_id] = entry
        write_manifest(manifest)
        print(f"{card_id}: test accuracy {acc:.4f} in {seconds:.1f} s -> {zoo_weights_path(card_id)}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="retrain even when up to date")
    parser.add_argument("--only", action="append", choices=sorted(RECIPES) + sorted(IMAGE2IMAGE_RECIPES),
                        help="train only this card")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    failures = build_zoo(args.only or sorted(RECIPES) + sorted(IMAGE2IMAGE_RECIPES), force=args.force)
    for msg in failures:
        print(f"error: {msg}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
