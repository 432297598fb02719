"""Feature transferability (Yosinski, Clune, Bengio & Lipson, NIPS 2014, arXiv:1411.1792) at workbench
scale: the AnB / BnB / AnB+ / BnB+ grid with a random-frozen-features control, plus linear CKA and SVCCA
between layers, LogME and LEEP of candidate sources, and UMAP views of one layer.

The analyzer builds and trains its own small networks (``analyzers/transfer_nets.py``), so it needs no zoo
model; the data set comes from the config (``--data mnist1d`` fills it on the command line). Finished
cells, frozen-trunk features and UMAP fits live in bounded in-process caches (see ``transfer_grid`` and
``transfer_measures``): a cancelled run resumes without retraining finished cells.

Scale-out: ``workbench sweep transferability --split --set cuts=1,2,3,4 --set seeds=2 --workers 2 --out DIR``
(or ``wb.sweep(..., split=True)``) runs one cell per (seed, cut) on the sweep's executors, cached on disk,
and merges them into this same result (``split.py``); the single call stays the way for small grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers.transferability import measures as tm
from analyzers.transferability import nets as tn
from analyzers.transferability.assemble import Measured, assemble
from analyzers.transferability.grid import TREATMENTS, Grid, GridSpec
from analyzers.transferability.result import TransferabilityResult
from analyzers.transferability.split import merge_cells, split_cells
from workbench.core import Analyzer, option, register_analyzer
from workbench.core.config import from_dict
from workbench.core.errors import ConfigError

CUT_CHOICES = tuple(str(i) for i in range(1, tn.N_LAYERS + 1))


@dataclass(frozen=True)
class TransferabilityConfig:
    dataset: str = option("mnist1d", "data set to split into halves A and B (mnist1d is generated locally; "
                                     "digits is sklearn's 8x8 set, the quick version)", choices=tn.DATASETS)
    num_samples: int = option(3000, "mnist1d: generated set size (80% train, 20% test; each half gets half)",
                              min=1000, max=60000)
    classes_a: str = option("", "classes of half A, comma-separated (e.g. 0,1,2,3,4); empty = a random half "
                                "drawn with split_seed; B is the rest")
    split_seed: int = option(0, "seed of the random class split", min=0, max=2**31 - 1)
    cuts: str = option("2,4", "cut points n: layers 1..n are copied (conv1-4, fc5)", choices=CUT_CHOICES,
                       multi=True)
    seeds: int = option(1, "independent seeds (initializations and data order) per cell", min=1, max=5)
    epochs: int = option(8, "training epochs of every network (bases and transfers: the same budget)",
                         min=1, max=200)
    lr: float = option(3e-3, "Adam learning rate (cosine decay), the same for copied and new layers",
                       min=1e-5, max=1.0)
    batch_size: int = option(128, "training batch size", min=8, max=4096)
    random_control: bool = option(True, "also train the random-frozen-features control")
    cache_features: bool = option(True, "train frozen cells on cached frozen-trunk features (same numbers; the "
                                         "frozen layers run once, not on every batch)")
    cka_unbiased: bool = option(False, "CKA with the unbiased HSIC estimator (Song et al. 2012) instead of the "
                                       "biased one")
    view_cut: int = option(0, "cut n of the AnB+ net compared with baseB by CKA and of the UMAP transfer net; "
                              "0 = the largest chosen cut", min=0, max=tn.N_LAYERS)
    probe_samples: int = option(500, "task-B test inputs used for CKA, SVCCA and UMAP", min=50, max=5000)
    umap: bool = option(False, "UMAP of one layer for baseB and a transferred net (its first fit compiles for "
                               "~20 s of CPU; on in the preset 'paper')")
    umap_layer: int = option(0, "layer shown by UMAP (1-5); 0 = the last hidden layer (fc5)", min=0,
                             max=tn.N_LAYERS)
    umap_net: str = option("anb", "transferred network shown beside baseB in the UMAP view",
                           choices=TREATMENTS)


def class_split(n_classes: int, classes_a: str, seed: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Halves (A, B) of range(n_classes): the given A (B = the rest) or a seeded random half."""
    if classes_a.strip():
        try:
            a = sorted({int(c) for c in classes_a.split(",") if c.strip()})
        except ValueError:
            raise ConfigError(f"classes_a={classes_a!r} is not a list of class indices", "e.g. 0,1,2,3,4") from None
        if any(c < 0 or c >= n_classes for c in a):
            raise ConfigError(f"classes_a={classes_a!r} has a class outside 0..{n_classes - 1}")
    else:
        a = sorted(np.random.default_rng(seed).permutation(n_classes)[: n_classes // 2].tolist())
    b = [c for c in range(n_classes) if c not in a]
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"split {a} / {b} leaves a half with fewer than 2 classes",
                          "give half A between 2 and n_classes - 2 classes")
    return tuple(a), tuple(b)


def _grid_spec(config, n_classes: int, device: str, seed: int) -> GridSpec:
    a, b = class_split(n_classes, config.classes_a, config.split_seed)
    cuts = tuple(sorted({int(c) for c in config.cuts.split(",")}))
    return GridSpec(config.dataset, config.num_samples, a, b, cuts, tuple(seed + i for i in range(config.seeds)),
                    config.epochs, float(config.lr), config.batch_size, config.random_control,
                    config.cache_features, device)


@register_analyzer
class Transferability(Analyzer):
    name = "transferability"
    title = "Feature transferability"
    description = ("How general or specific is each layer? Yosinski's AnB/BnB experiment on two halves of a "
                   "data set's classes (frozen and fine-tuned copies, random-feature control), with linear "
                   "CKA, SVCCA, LogME/LEEP and UMAP views of the trained networks.")
    paper = ("Yosinski et al. 2014 (arXiv:1411.1792); Kornblith et al. 2019 (CKA); Raghu et al. 2017 (SVCCA); "
             "You et al. 2021 (LogME); Nguyen et al. 2020 (LEEP); McInnes et al. 2018 (UMAP)")
    Config = TransferabilityConfig
    result_class = TransferabilityResult
    page = "transferability.py"  # hand-written page: live grid of cells, class-split picker
    supports = ("signal1d", "image2d")
    libraries = ("threadpoolctl", "umap-learn")
    smoke_config = {"dataset": "digits", "cuts": "2", "seeds": 1, "epochs": 2, "umap": False}
    # the defaults are a grid of 12 cells without UMAP (~1 min on 2 CPU cores); the full grid is one click away
    presets = {"paper": {"about": "full grid: cuts 1-4, 2 seeds, 10 epochs on 5000 mnist1d samples, 44 cells, "
                                  "with UMAP (~11 min on a 2-core CPU, ~1 min on a GPU)",
                         "config": {"num_samples": 5000, "cuts": "1,2,3,4", "seeds": 2, "epochs": 10,
                                    "umap": True}}}

    @staticmethod
    def work_units(config: dict) -> float:
        """Cells x epochs x samples: a grid's time is about proportional to it (for estimates)."""
        cuts = [c for c in str(config.get("cuts", "")).split(",") if c.strip()]
        cells = int(config.get("seeds", 1)) * (2 + len(cuts) * (4 + bool(config.get("random_control", True))))
        size = int(config.get("num_samples", 3000)) if config.get("dataset", "mnist1d") == "mnist1d" else 1797
        return float(cells * int(config.get("epochs", 1)) * size)
    headline_check = None
    headline_reason = "it trains its own networks on the data set and takes no weights"
    needs_model = False
    needs_data = False

    def run(self, model, data, config, ctx):
        if model is not None:  # it never reads (or changes) a zoo model: say so rather than ignore it
            raise ConfigError(f"{self.name} trains its own networks and takes no --model",
                              "drop --model and choose the data set with --data mnist1d or --data digits")
        ctx.progress(0.0, f"loading {config.dataset}")
        arrays = tn.load_arrays(config.dataset, config.num_samples)
        n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
        if n_classes < 4:
            raise ConfigError(f"{config.dataset} has {n_classes} classes; the split needs at least 4")
        spec = _grid_spec(config, n_classes, ctx.device, ctx.seed)
        tasks = {"a": tn.task_tensors(arrays, spec.classes_a, ctx.device),
                 "b": tn.task_tensors(arrays, spec.classes_b, ctx.device)}
        grid = Grid(spec, tasks, ctx.sub(0.02, 0.85), publish=_publisher(ctx))
        out = grid.run()
        view_cut = config.view_cut if config.view_cut in spec.cuts else spec.cuts[-1]
        probe = tasks["b"]["x_test"][: config.probe_samples]
        ctx.progress(0.86, "CKA and SVCCA between layers")
        sim = tm.similarity(grid, out, probe, view_cut, config.cka_unbiased)
        ctx.progress(0.9, "LogME and LEEP of candidate sources")
        sc = tm.scores(grid, out)
        views = None
        if config.umap:
            views = _umap(Trained(grid, out, spec, probe, tasks["b"]["y_test"][: len(probe)], view_cut), config, ctx)
        return assemble(config, Measured(spec, out, view_cut, sim, sc, views))

    # scale-out (workbench/sweep/split.py): cells of (seed, cut), merged into this call's result
    split = staticmethod(split_cells)

    @staticmethod
    def merge(config: dict, seed: int, parts: list) -> TransferabilityResult:
        return merge_cells(from_dict(TransferabilityConfig, config), seed, parts)


LIVE_KEY = "transfer_grid"


def _publisher(ctx):
    """Publish the partial grid under ``LIVE_KEY`` after every cell (``ctx.publish(key, value)``, read by
    the page's live view); None for a context without a live channel."""
    publish = getattr(ctx, "publish", None)
    return (lambda snapshot: publish(LIVE_KEY, snapshot)) if callable(publish) else None


@dataclass
class Trained:
    """The finished grid and what the views read: ``probe`` (P, ...) float32 the first task-B test inputs,
    ``probe_labels`` (P,) int64 their classes, ``view_cut`` the cut n the views show."""

    grid: Grid
    out: object
    spec: GridSpec
    probe: torch.Tensor
    probe_labels: torch.Tensor
    view_cut: int


def _umap(t: Trained, config, ctx) -> Findings:
    """UMAP of one layer's features of baseB and of ``config.umap_net`` at the view cut (seed 0)."""
    grid, out, spec, probe, view_cut = t.grid, t.out, t.spec, t.probe, t.view_cut
    layer = config.umap_layer or tn.N_LAYERS
    key_t = out.cells.get((spec.seeds[0], config.umap_net, view_cut))
    if key_t is None:
        raise ConfigError(f"umap_net={config.umap_net} was not run", "turn random_control on or pick another net")
    ctx.progress(0.93, f"UMAP of {tn.LAYER_NAMES[layer - 1]} (baseB)")
    base = tm.umap_embedding(grid, out.cells[(spec.seeds[0], "base_b", 0)], probe, layer, spec.seeds[0])
    ctx.progress(0.97, f"UMAP of {tn.LAYER_NAMES[layer - 1]} ({config.umap_net})")
    transfer = tm.umap_embedding(grid, key_t, probe, layer, spec.seeds[0])
    name = {"bnb": "BnB", "bnb_plus": "BnB+", "anb": "AnB", "anb_plus": "AnB+", "random_frozen": "random frozen"}
    where = tn.LAYER_NAMES[layer - 1]
    titles = [f"baseB, {where}", f"{name[config.umap_net]} n={view_cut}, {where}"]
    return Findings(arrays={"umap_base": base, "umap_transfer": transfer,
                            "umap_labels": t.probe_labels.cpu().numpy()}, info={"umap_titles": titles})
