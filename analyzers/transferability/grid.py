"""The experiment grid of Yosinski et al. 2014 at workbench scale, resumable through bounded caches.

Per seed: baseA (trained on half A) and baseB (half B); then for every cut n: BnB / AnB (layers 1..n
copied from baseB / baseA and frozen, layers n+1.. re-initialized and trained on B), BnB+ / AnB+ (the
same, every layer trained) and the random-frozen control (layers 1..n random, BatchNorm statistics
calibrated on B's inputs, frozen). Every cell gets the base networks' training budget (same epochs, lr,
batch size), as in the paper. Accuracies are top-1 on B's test split (baseA: on A's).

Caches (module level, bounded, in-process; analyzers do no file I/O):

- ``_CELLS`` (``CELL_CACHE_SIZE`` entries): a finished cell's accuracy, trained state dict (CPU) and
  frozen-layer hashes, keyed by (architecture version, dataset, generated size, classes of A and B,
  epochs, lr, batch size, device, seed, treatment, n). A run cancelled half-way keeps every finished
  cell; running the same configuration again reuses them and trains only what is missing.
- ``_FEATURES`` (``FEATURE_CACHE_SIZE`` entries): the frozen trunk's output on B's training inputs,
  keyed by (source cell key, n). Frozen cells train only the upper layers on these.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analyzers.transferability import nets as tn
from workbench.core.cache import BoundedCache
from workbench.core.errors import ComputeError

TREATMENTS = ("bnb", "bnb_plus", "anb", "anb_plus", "random_frozen")
LABELS = {"bnb": "BnB", "bnb_plus": "BnB+", "anb": "AnB", "anb_plus": "AnB+", "random_frozen": "random frozen"}
FROZEN = {"bnb": "base_b", "anb": "base_a", "random_frozen": "random"}  # frozen treatment -> its source
TUNED = {"bnb_plus": "base_b", "anb_plus": "base_a"}
CELL_CACHE_SIZE = 160
FEATURE_CACHE_SIZE = 6
_CELLS = BoundedCache(CELL_CACHE_SIZE)
_FEATURES = BoundedCache(FEATURE_CACHE_SIZE)


@dataclass(frozen=True)
class GridSpec:
    """Everything that determines the grid's numbers (``cache_features`` only changes the speed)."""

    dataset: str
    num_samples: int
    classes_a: tuple[int, ...]
    classes_b: tuple[int, ...]
    cuts: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    lr: float
    batch_size: int
    random_control: bool = True
    cache_features: bool = True
    device: str = "cpu"

    def cell_key(self, seed: int, treatment: str, n: int = 0) -> tuple:
        return (tn.ARCH_VERSION, self.dataset, self.num_samples if self.dataset == "mnist1d" else 0,
                self.classes_a, self.classes_b, self.epochs, self.lr, self.batch_size, self.device,
                int(seed), treatment, int(n))


@dataclass
class Cell:
    """A trained network: ``acc`` top-1 in [0, 1] on its task's test split; ``state`` its weights
    (CPU); for frozen cells the hash of layers 1..n in the source, after copying and after training."""

    acc: float
    state: dict
    hashes: tuple[str, str, str] | None = None
    seconds: float = 0.0

    @property
    def frozen_ok(self) -> bool | None:
        return None if self.hashes is None else len(set(self.hashes)) == 1


@dataclass
class GridOutcome:
    """``acc`` (S, 5, K) float32 over seeds x TREATMENTS x cuts; ``mask`` (S, 5, K) 1 where computed;
    ``base`` (S, 2) accuracies of baseA (on A) and baseB (on B); ``frozen_ok`` (S, 5, K) 1/0, -1 where
    not a frozen cell."""

    acc: np.ndarray
    mask: np.ndarray
    base: np.ndarray
    frozen_ok: np.ndarray
    trained: int = 0
    reused: int = 0
    seconds: float = 0.0
    cells: dict = field(default_factory=dict)


def derived_seed(*parts) -> int:
    """A stable 31-bit seed from any parts (so each cell's init and data order are reproducible)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


def cell_plan(spec: GridSpec) -> list[tuple[int, str, int]]:
    """(seed, treatment, n) in training order: the bases of a seed first, then its cuts."""
    plan = []
    for s in spec.seeds:
        plan += [(s, "base_a", 0), (s, "base_b", 0)]
        for n in spec.cuts:
            plan += [(s, t, n) for t in TREATMENTS if t != "random_frozen" or spec.random_control]
    return plan


class Grid:
    """Runs the plan, reusing cached cells. ``progress(fraction, message)`` is called between epochs
    (it raises to cancel); ``publish(snapshot)``, when given, gets the partial grid after every cell."""

    def __init__(self, spec: GridSpec, tasks: dict, progress: Callable[[float, str], None],
                 publish: Callable[[dict], None] | None = None, freeze_bn: bool = True) -> None:
        self.spec, self.tasks, self.progress, self.publish = spec, tasks, progress, publish
        self.freeze_bn = freeze_bn
        self.local: dict[tuple, Cell] = {}  # this run's cells, safe from eviction by other runs
        self.n_classes = {"a": len(spec.classes_a), "b": len(spec.classes_b)}

    def net(self, key: tuple) -> tn.TransferNet:
        """The trained network of a cached cell, rebuilt in eval mode on the spec's device."""
        cell = self.local.get(key) or _CELLS.get(key)
        if cell is None:
            raise ComputeError(f"cell {key[-3:]} is no longer cached", "run the grid again")
        k = self.n_classes["a"] if key[-2] == "base_a" else self.n_classes["b"]
        net = tn.build_net(self.spec.dataset, k, 0).to(self.spec.device)
        net.load_state_dict(cell.state)
        return net.eval()

    def run(self) -> GridOutcome:
        spec, t0 = self.spec, time.perf_counter()
        plan = cell_plan(spec)
        S, K = len(spec.seeds), len(spec.cuts)
        out = GridOutcome(np.zeros((S, 5, K), np.float32), np.zeros((S, 5, K), np.float32),
                          np.zeros((S, 2), np.float32), np.full((S, 5, K), -1, np.float32))
        for i, (seed, treatment, n) in enumerate(plan):
            key = spec.cell_key(seed, treatment, n)
            cell = _CELLS.get(key)
            if cell is None:
                lo, hi = i / len(plan), (i + 1) / len(plan)
                label = f"cell {i + 1}/{len(plan)}: {LABELS.get(treatment, treatment)} n={n} seed {seed}"
                self.progress(lo, label)
                cell = self._train_cell(seed, treatment, n, lambda f, lo=lo, hi=hi, m=label:
                                        self.progress(lo + (hi - lo) * f, m))  # noqa: B023 (bound)
                _CELLS.put(key, cell)
                out.trained += 1
            else:
                out.reused += 1
            self.local[key] = cell
            out.cells[(seed, treatment, n)] = key
            si = spec.seeds.index(seed)
            if treatment in ("base_a", "base_b"):
                out.base[si, 0 if treatment == "base_a" else 1] = cell.acc
            else:
                ti, ki = TREATMENTS.index(treatment), spec.cuts.index(n)
                out.acc[si, ti, ki], out.mask[si, ti, ki] = cell.acc, 1.0
                if cell.frozen_ok is not None:
                    out.frozen_ok[si, ti, ki] = float(cell.frozen_ok)
            if self.publish is not None:
                self.publish({"acc": out.acc.copy(), "mask": out.mask.copy(), "base": out.base.copy(),
                              "cuts": list(spec.cuts), "seeds": list(spec.seeds), "treatments": list(TREATMENTS),
                              "done": i + 1, "total": len(plan)})
        out.seconds = time.perf_counter() - t0
        return out

    # -- one cell --------------------------------------------------------------------------------
    def _train_cell(self, seed: int, treatment: str, n: int, progress: Callable[[float], None]) -> Cell:
        spec, t0 = self.spec, time.perf_counter()
        half = "a" if treatment == "base_a" else "b"
        task = self.tasks[half]
        net = tn.build_net(spec.dataset, self.n_classes[half], derived_seed(seed, treatment, n, "init"))
        net = net.to(spec.device)
        frozen, inputs, hashes, src_hash = 0, task["x_train"], None, ""
        if treatment in TUNED:
            tn.copy_layers(net, self.local[spec.cell_key(seed, TUNED[treatment])].state, n)
        elif treatment in FROZEN:
            frozen = n
            source_key, source = self._source(seed, treatment, n)
            src_hash = tn.layer_hash(source, n)
            tn.copy_layers(net, tn.state_to_cpu(source), n)
            if spec.cache_features:
                inputs = _FEATURES.get_or_create((source_key, n),
                                                 lambda: tn.trunk_features(source, task["x_train"], n))
        before = tn.layer_hash(net, frozen) if frozen else ""
        plan = tn.TrainPlan(spec.epochs, spec.lr, spec.batch_size, derived_seed(seed, treatment, n, "order"),
                            frozen=frozen, precomputed=bool(frozen and spec.cache_features), freeze_bn=self.freeze_bn)
        tn.train(net, inputs, task["y_train"], plan, on_epoch=lambda ep: progress((ep + 1) / spec.epochs))
        if frozen:
            hashes = (src_hash, before, tn.layer_hash(net, frozen))
        acc = tn.accuracy(net, task["x_test"], task["y_test"])
        return Cell(acc, tn.state_to_cpu(net), hashes, time.perf_counter() - t0)

    def _source(self, seed: int, treatment: str, n: int) -> tuple[tuple, tn.TransferNet]:
        """The network whose layers 1..n are copied and frozen (random: seeded, BN calibrated on B)."""
        spec = self.spec
        if FROZEN[treatment] != "random":
            key = spec.cell_key(seed, FROZEN[treatment])
            return key, self.net(key)
        key = spec.cell_key(seed, "random_source", n)
        net = tn.build_net(spec.dataset, self.n_classes["b"], derived_seed(seed, "random_source")).to(spec.device)
        tn.calibrate_bn(net, self.tasks["b"]["x_train"], n)
        return key, net


def clear_caches() -> None:
    """Forget every cached cell and feature (the benchmark's cold start)."""
    _CELLS.clear()
    _FEATURES.clear()
