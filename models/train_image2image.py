"""``make zoo`` for the image-to-image cards: train on skimage patches, score PSNR on held-out pictures.

Super-resolution: high-resolution patches (``patch`` x ``patch``) cut at random from the training
pictures at scales 1, 1/2 and 1/4 (so the net sees the detail density of downscaled thumbnails),
low resolution = bicubic antialiased downscaling by 2; loss MSE against the high-resolution patch.
Denoising: clean patches of the same pyramid plus N(0, sigma^2) noise; loss MSE against the clean
patch. Both use Adam with a one-cycle schedule, random flips / transposes, fixed seeds.
A model that does not beat its baseline (bicubic / the noisy input) by ``min_gain_db`` on the
held-out pictures fails the build and its weights are not written.
"""

from __future__ import annotations

import datetime
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import architectures
from models import image2image as i2i
from models.recipes import IMAGE2IMAGE_RECIPES, image2image_recipe_hash
from models.weights import file_sha256, read_manifest, write_manifest, zoo_weights_path

HPARAMS = ("steps", "batch_size", "patch", "lr", "scale", "sigma")
MAX_SIDE = 512
SCALES = (1.0, 0.5, 0.25)


def downscale(hr: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1, H / factor, W / factor): bicubic with antialiasing (the SR degradation)."""
    return F.interpolate(hr, scale_factor=1.0 / factor, mode="bicubic", antialias=True, align_corners=False)


def upscale(lr: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1, factor H, factor W): plain bicubic upsampling (the SR baseline)."""
    return F.interpolate(lr, scale_factor=float(factor), mode="bicubic", align_corners=False)


def pyramid(names: tuple[str, ...]) -> list[np.ndarray]:
    """Every training picture in grayscale at scales 1, 1/2, 1/4 (longest side capped at 512 first)."""
    out = []
    for name in names:
        img = torch.from_numpy(np.array(i2i.gray_picture(name)))[None, None]
        cap = MAX_SIDE / max(img.shape[-2:])
        for s in SCALES:
            f = min(1.0, cap) * s
            level = img if f == 1.0 else F.interpolate(img, scale_factor=f, mode="bilinear", antialias=True,
                                                       align_corners=False)
            out.append(level[0, 0].numpy())
    return out


def sample_patches(levels: list[np.ndarray], n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """n random (size x size) crops, randomly flipped / transposed -> (n, 1, size, size) float32."""
    big = [lv for lv in levels if min(lv.shape) >= size]
    out = np.empty((n, size, size), dtype=np.float32)
    for i, k in enumerate(rng.integers(0, len(big), n)):
        lv = big[k]
        r, c = rng.integers(0, lv.shape[0] - size + 1), rng.integers(0, lv.shape[1] - size + 1)
        p = lv[r:r + size, c:c + size]
        p = p.T if rng.random() < 0.5 else p
        out[i] = p[::-1] if rng.random() < 0.5 else p
    return torch.from_numpy(out)[:, None]


def pair(recipe: dict, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(model input, target) for a batch of clean patches (N, 1, P, P)."""
    if recipe["task"] == "super_resolution":
        return downscale(clean, recipe["scale"]), clean
    return clean + recipe["sigma"] * torch.randn(clean.shape, generator=gen), clean


@torch.no_grad()
def evaluate(recipe: dict, model: nn.Module) -> dict:
    """Held-out PSNR of the model and of its baseline, per picture and averaged (dB)."""
    model.eval()
    rows = {}
    for i, name in enumerate(i2i.HELD_OUT):
        hr = i2i.square_crop(i2i.gray_picture(name), i2i.EVAL_SIZE)
        clean = torch.from_numpy(hr)[None, None]
        if recipe["task"] == "super_resolution":
            lr = downscale(clean, recipe["scale"])
            est, base = model(lr), upscale(lr, recipe["scale"])
        else:
            base = clean + torch.from_numpy(i2i.noise(hr.shape, seed=i2i.NOISE_SEED + 1 + i, sigma=recipe["sigma"]))
            est = model(base)
        rows[name] = (i2i.psnr(est[0, 0].numpy(), hr), i2i.psnr(base[0, 0].numpy(), hr))
    return {"psnr_db": float(np.mean([v[0] for v in rows.values()])),
            "baseline_psnr_db": float(np.mean([v[1] for v in rows.values()])),
            "per_image": {k: {"model": round(v[0], 3), "baseline": round(v[1], 3)} for k, v in rows.items()}}


def train(card_id: str, recipe: dict, log=print) -> tuple[nn.Module, dict, float]:
    """Train one recipe from its seed -> (model in eval mode, held-out scores, seconds)."""
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    rng = np.random.default_rng(recipe["seed"])
    start = time.perf_counter()
    levels = pyramid(i2i.TRAIN_IMAGES)
    model = getattr(architectures, recipe["architecture"])()
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=recipe["steps"])
    model.train()
    for step in range(1, recipe["steps"] + 1):
        x, y = pair(recipe, sample_patches(levels, recipe["batch_size"], recipe["patch"], rng), gen)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            log(f"{card_id} step {step}/{recipe['steps']}: loss {loss.item():.5f} "
                f"({time.perf_counter() - start:.1f} s)")
    scores = evaluate(recipe, model)
    return model.eval(), scores, time.perf_counter() - start


def up_to_date(card_id: str) -> bool:
    entry, path = read_manifest()["cards"].get(card_id), zoo_weights_path(card_id)
    return (isinstance(entry, dict) and entry.get("recipe_hash") == image2image_recipe_hash(card_id)
            and path.exists() and file_sha256(path) == entry.get("sha256"))


def save(card_id: str, recipe: dict, model: nn.Module, scores: dict, seconds: float) -> dict:
    """Write ``<zoo>/<card_id>.safetensors`` and return its manifest entry (PSNR instead of accuracy)."""
    from safetensors.torch import save_file

    path = zoo_weights_path(card_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"workbench": f"{card_id} recipe {image2image_recipe_hash(card_id)}"})
    return {
        "file": path.name, "sha256": file_sha256(path), "architecture": recipe["architecture"],
        "task": "image2image", "recipe": {"name": recipe["name"], "dataset": recipe["dataset"],
                                          "hyperparameters": {k: recipe[k] for k in HPARAMS if k in recipe}},
        "recipe_hash": image2image_recipe_hash(card_id), "seed": recipe["seed"],
        "psnr_db": round(scores["psnr_db"], 4), "baseline_psnr_db": round(scores["baseline_psnr_db"], 4),
        "baseline": recipe["baseline"], "min_gain_db": recipe["min_gain_db"], "per_image": scores["per_image"],
        "held_out": list(i2i.HELD_OUT), "eval_size": i2i.EVAL_SIZE,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "train_seconds": round(seconds, 2), "params": int(sum(p.numel() for p in model.parameters())),
        "torch": torch.__version__,
    }


def build(card_id: str, force: bool = False, log=print) -> list[str]:
    """Train one image-to-image card unless up to date; returns failure messages (empty: success)."""
    recipe = IMAGE2IMAGE_RECIPES[card_id]
    if not force and up_to_date(card_id):
        print(f"{card_id}: up to date")
        return []
    model, scores, seconds = train(card_id, recipe, log)
    gain = scores["psnr_db"] - scores["baseline_psnr_db"]
    if gain < recipe["min_gain_db"]:
        return [f"{card_id}: held-out PSNR {scores['psnr_db']:.2f} dB beats the {recipe['baseline']} "
                f"({scores['baseline_psnr_db']:.2f} dB) by only {gain:.2f} dB, below the required "
                f"{recipe['min_gain_db']:.2f} dB; weights not written"]
    entry = save(card_id, recipe, model, scores, seconds)
    manifest = read_manifest()
    manifest["format"] = 1
    manifest["cards"][card_id] = entry
    write_manifest(manifest)
    print(f"{card_id}: held-out PSNR {scores['psnr_db']:.2f} dB vs {recipe['baseline']} "
          f"{scores['baseline_psnr_db']:.2f} dB in {seconds:.1f} s -> {zoo_weights_path(card_id)}")
    return []
