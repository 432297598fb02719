"""Learning-stop detection (Ahmad, Trahan & Islam, "When do CNNs stop learning?", arXiv 2403.02473):
train a fresh copy of a zoo card, record every step the std of each monitored layer's output, and
stop once the rounded per-epoch means stop changing, without validation data.

The rule runs as the authors' code does (every layer unchanged over a window, after a warm-up),
next to the variant written in the paper's text (signed sum of the changes is zero) and two
baselines on the same run: validation-patience early stopping and a training-loss plateau.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analyzers.learning_stop.monitor import measure_overhead, resolve_layers
from analyzers.learning_stop.result import CRITERIA, LearningStopResult
from analyzers.learning_stop.rules import (
    VARIANTS,
    epoch_deltas,
    learning_stop_epoch,
    patience_stop_epoch,
    plateau_stop_epoch,
    saved_pct,
)
from analyzers.learning_stop.train import History, PaperCNN, Splits, optimizer_factory, split_validation, train_watch
from workbench.core import Analyzer, Check, list_cards, option, register_analyzer
from workbench.core.errors import ComputeError, ConfigError, DataError, UnsupportedModelError

OVERHEAD_LIMIT_PCT = 5.0
ACC_TOLERANCE = 0.01
SWEEP_PRECISIONS = (0, 1, 2, 3, 4)
MAX_STORED_STEPS = 100  # per-step stds kept per epoch for plotting (the rule uses every step)


@dataclass(frozen=True)
class LearningStopConfig:
    network: str = option("card", "what to train: the card's architecture, or the paper's plain CNN "
                                  "(conv-pool-ReLU blocks, no BatchNorm) sized to the card's input",
                          choices=("card", "paper_cnn"))
    init: str = option("fresh", "fresh = seeded random initialisation (the paper's setting); pretrained = "
                                "continue from the card's weights (network=card only)",
                       choices=("fresh", "pretrained"))
    optimizer: str = option("sgd", "sgd with momentum (the paper's) or adam", choices=("sgd", "adam"))
    lr: float = option(0.1, "learning rate; 0 is a control in which nothing can change", min=0.0, max=10.0)
    momentum: float = option(0.9, "SGD momentum", min=0.0, max=0.999)
    weight_decay: float = option(5e-4, "L2 weight decay", min=0.0, max=1.0)
    batch_size: int = option(64, "training batch size", min=1, max=4096)
    max_epochs: int = option(12, "epochs to train at most (E_max; the paper trains 100-200: preset 'paper')",
                             min=2, max=1000)
    lr_schedule: str = option("step", "step = /10 every lr_step epochs, three times (the paper's); "
                                      "constant; cosine to 0 at max_epochs",
                              choices=("step", "constant", "cosine"))
    lr_step: int = option(4, "epochs between step decays (the paper: 30)", min=1, max=1000)
    seed: int = option(-1, "seed of initialisation, shuffling and validation split; -1 = the run's seed",
                       min=-1, max=2**31 - 1)
    layers: str = option("auto", "monitored layers: auto = output of each resolution stage (the paper's "
                                 "block outputs), card = the card's layers of interest, conv_linear = every "
                                 "Conv/Linear layer, or comma-separated module names")
    precision: int = option(2, "decimals the per-epoch means are rounded to (the paper's p)", min=0, max=8)
    warmup: int = option(2, "epochs that only record before the rule may fire (the paper: 5)", min=0, max=1000)
    window: int = option(3, "epochs whose rounded means must all be equal (the paper: 5)", min=2, max=1000)
    rule: str = option("per_layer", "per_layer = the authors' code (every layer unchanged); sum = the "
                                    "paper's text (signed sum of changes is zero); relative = every layer "
                                    "within rel_tol", choices=VARIANTS)
    rel_tol: float = option(1e-3, "relative tolerance of the 'relative' rule", min=0.0, max=1.0)
    patience: int = option(10, "epochs without improvement before the validation-patience and train-loss "
                               "plateau baselines stop", min=1, max=1000)
    plateau_delta: float = option(1e-3, "smallest train-loss improvement (nats) the plateau baseline counts",
                                  min=0.0, max=10.0)
    val_fraction: float = option(0.1, "fraction of the training split held out (stratified, seeded) for "
                                      "the validation-patience baseline", min=0.02, max=0.5)
    stop_training: bool = option(False, "really stop at the rule's epoch (the paper's use); off = train to "
                                        "max_epochs and mark where every criterion would have stopped")
    overhead_pairs: int = option(5, "alternating training steps timed with and without the monitor",
                                 min=2, max=200)


def _splits(card, fraction: float, seed: int, device: str) -> Splits:
    """The card's fixed train/test split as tensors, with a seeded validation hold-out from train."""
    make = card.extra.get("training_data")
    if make is None:
        ok = [c.id for c in list_cards() if "training_data" in c.extra and c.kind in LearningStop.supports]
        raise UnsupportedModelError(f"{card.id} has no built-in training data to train on",
                                    f"use a card that has: {', '.join(ok) or 'none is registered'}")
    (xtr, ytr), (xte, yte) = make("train"), make("test")
    n_cls = len(card.class_names)
    if min(len(ytr), len(yte)) == 0 or max(ytr.max(), yte.max()) >= n_cls:
        raise DataError(f"{card.id}: training data is empty or has labels outside 0..{n_cls - 1}")
    tr, va = split_validation(np.asarray(ytr), fraction, seed)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return Splits(t(xtr[tr].astype(np.float32)), t(ytr[tr].astype(np.int64)), t(xtr[va].astype(np.float32)),
                  t(ytr[va].astype(np.int64)), t(xte.astype(np.float32)), t(yte.astype(np.int64)))


def _network(model, config, seed: int) -> torch.nn.Module:
    """A freshly initialised network (seeded) or the private copy of the card's trained weights."""
    card = model.card
    if config.init == "pretrained":
        if config.network != "card":
            raise ConfigError("init=pretrained needs network=card", "the paper's CNN has no trained weights")
        module = model.module
    else:
        torch.manual_seed(seed)
        module = card.build() if config.network == "card" else PaperCNN(card.input_shape, len(card.class_names))
    module = module.to(model.device)
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def criteria_epochs(hist: History, config) -> dict[str, int]:
    """First firing epoch (0 = none) of every criterion on the curves recorded so far."""
    mu = hist.mu()
    rule = {"precision": config.precision, "warmup": config.warmup, "window": config.window,
            "rel_tol": config.rel_tol}
    out = {v: learning_stop_epoch(mu, variant=v, **rule) for v in VARIANTS}
    out["patience"] = patience_stop_epoch(np.array(hist.val_loss), patience=config.patience)
    out["plateau"] = plateau_stop_epoch(np.array(hist.train_loss), patience=config.patience,
                                        min_delta=config.plateau_delta)
    return out


def _stored_alpha(hist: History) -> tuple[np.ndarray, np.ndarray]:
    """Per-step stds for plotting: (S, L) float32 and their position in epochs (S,) float32,
    at most MAX_STORED_STEPS evenly spaced steps per epoch."""
    vals, pos = [], []
    for e, a in enumerate(hist.alpha):
        keep = np.unique(np.linspace(0, len(a) - 1, min(len(a), MAX_STORED_STEPS)).round().astype(int))
        vals.append(a[keep])
        pos.append(e + (keep + 1) / len(a))
    if not vals:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return np.concatenate(vals).astype(np.float32), np.concatenate(pos).astype(np.float32)


def assemble(hist: History, config, names: list[str], overhead: dict, info: dict) -> tuple[dict, dict, dict]:
    """(metrics, arrays, info) of the run so far: used for live snapshots and for the final result."""
    e_max, trained = config.max_epochs, hist.epochs
    stops = criteria_epochs(hist, config)
    acc = np.array(hist.test_acc, dtype=np.float64)
    metrics: dict[str, float] = {"epochs_trained": trained, "max_epochs": e_max,
                                 "acc_at_end": float(acc[-1]) if trained else 0.0}
    for key in CRITERIA:
        fired = stops[key] > 0
        at = stops[key] if fired else trained
        metrics[f"{key}_stop_epoch"] = float(at)
        metrics[f"{key}_fired"] = float(fired)
        metrics[f"{key}_acc"] = float(acc[at - 1]) if trained else 0.0
        metrics[f"{key}_saved_pct"] = saved_pct(stops[key], e_max)
    p = config.rule
    metrics.update(stop_epoch=metrics[f"{p}_stop_epoch"], stop_fired=metrics[f"{p}_fired"],
                   acc_at_stop=metrics[f"{p}_acc"], epochs_saved_pct=metrics[f"{p}_saved_pct"],
                   patience_stop_epoch=metrics["patience_stop_epoch"])
    metrics["acc_change_pts"] = 100.0 * (metrics["acc_at_stop"] - metrics["acc_at_end"])
    metrics.update(monitor_overhead_pct=overhead["overhead_pct"], step_time_ms=1e3 * overhead["without_s"],
                   monitor_step_time_ms=1e3 * overhead["with_s"])
    mu = hist.mu() if trained else np.zeros((0, len(names)))
    sweep_rule = p if p != "relative" else "per_layer"
    sweep = [learning_stop_epoch(mu, precision=q, warmup=config.warmup, window=config.window, variant=sweep_rule)
             for q in SWEEP_PRECISIONS]
    for q, s in zip(SWEEP_PRECISIONS, sweep, strict=True):
        metrics[f"stop_epoch_p{q}"] = float(s)
    alpha, alpha_pos = _stored_alpha(hist)
    arrays = {"mu": mu, "delta": epoch_deltas(mu, config.precision) if trained else np.zeros((0, len(names))),
              "alpha": alpha, "alpha_pos": alpha_pos, "stops": np.array([stops[k] for k in CRITERIA]),
              "precision_sweep": np.array([SWEEP_PRECISIONS, sweep], dtype=np.int64),
              "overhead_times": np.array([overhead["times_without"], overhead["times_with"]])}
    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "epoch_time"):
        arrays[k] = np.array(getattr(hist, k), dtype=np.float64)
    return metrics, arrays, {**info, "layers": names, "criteria": list(CRITERIA), "primary": p,
                             "precision": config.precision, "epochs_trained": trained}


def _checks(metrics: dict, config) -> list[Check]:
    fired = bool(metrics["stop_fired"])
    checks = [Check("rule_fired", fired, metrics["stop_epoch"] if fired else None, float(config.max_epochs),
                    f"the {config.rule} rule fired at epoch {int(metrics['stop_epoch'])} of {config.max_epochs}"
                    if fired else f"the {config.rule} rule did not fire within {int(metrics['epochs_trained'])} "
                                  "epochs (statistics still changing at this precision)")]
    if fired and metrics["epochs_trained"] == config.max_epochs:
        drop = metrics["acc_at_end"] - metrics["acc_at_stop"]
        checks.append(Check("accuracy_kept", drop <= ACC_TOLERANCE, 100 * drop, 100 * ACC_TOLERANCE,
                            "test accuracy at the rule's stop is within one point of training to the end "
                            "(the paper's 'without losing accuracy'); value = points lost"))
    ov = metrics["monitor_overhead_pct"]
    pairs = min(200, max(30, 3 * config.overhead_pairs))
    checks.append(Check("monitor_overhead", ov <= OVERHEAD_LIMIT_PCT, ov, OVERHEAD_LIMIT_PCT,
                        "extra time per training step with the monitor's hooks, percent (median of "
                        "alternating steps on the same batch)",
                        next_step=f"time more steps (overhead_pairs {config.overhead_pairs} -> {pairs}): on a busy "
                                  "or small machine a few steps are noisy; if it stays high, monitor fewer layers "
                                  "(layers=auto) or a larger batch",
                        fix={"overhead_pairs": pairs}))
    if not fired:
        more = min(1000, 2 * config.max_epochs)
        checks[0].next_step = f"train longer (max_epochs {config.max_epochs} -> {more}) or round coarser (precision " \
                              f"{config.precision} -> {max(0, config.precision - 1)})"
        checks[0].fix = {"max_epochs": more}
    return checks


@register_analyzer
class LearningStop(Analyzer):
    name = "learning_stop"
    title = "Learning-stop detection"
    description = ("Train a fresh copy of a model and watch the spread of each layer's output: once the "
                   "rounded per-epoch means stop changing, training can stop without validation data. "
                   "Compared with validation-patience early stopping and a train-loss plateau on the same run.")
    paper = "Ahmad, Trahan & Islam 2024, When do CNNs stop learning? (arXiv 2403.02473)"
    Config = LearningStopConfig
    result_class = LearningStopResult
    page = "learning_stop.py"  # hand-written page: live training curves, overlay of finished runs
    supports = ("image2d", "signal1d", "eeg")
    smoke_config = {"max_epochs": 2, "warmup": 0, "window": 2, "overhead_pairs": 2}
    # the defaults are a one-minute run on 2 CPU cores (12 epochs, decays every 4, warm-up 2, window 3);
    # the paper's schedule is one click away
    presets = {"paper": {"about": "paper scale: 100 epochs, decays every 30, warm-up 5, window 5 "
                                  "(~20 min on a 2-core CPU, ~1 min on a GPU)",
                         "config": {"max_epochs": 100, "lr_step": 30, "warmup": 5, "window": 5,
                                    "overhead_pairs": 10}}}

    @staticmethod
    def work_units(config: dict) -> float:
        """Training epochs: the run's time is about proportional to them (used to extrapolate estimates)."""
        return float(config.get("max_epochs", 1))
    headline_check = None
    headline_reason = "it trains the architecture from a seeded fresh initialization (init=fresh): weights are not read"
    mutates_model = True  # a private copy: the runner neither shares nor locks the cached model
    needs_data = False

    def run(self, model, data, config, ctx):
        card = model.card
        seed = ctx.seed if config.seed < 0 else config.seed
        ctx.progress(0.0, "loading the training data")
        splits = _splits(card, config.val_fraction, seed, model.device)
        module = _network(model, config, seed)
        names = resolve_layers(module, config.layers, card.input_shape, card.layers_of_interest)
        ctx.progress(0.01, "timing the monitor")
        make_opt = optimizer_factory(config.optimizer, config.lr, config.momentum, config.weight_decay)
        bs = min(config.batch_size, len(splits.y_train))
        overhead = measure_overhead(module, make_opt, splits.x_train[:bs], splits.y_train[:bs], names,
                                    config.overhead_pairs, on_step=lambda f: ctx.progress(0.01 + 0.01 * f,
                                                                                          "timing the monitor"))
        info = {"card": card.id, "kind": card.kind, "network": config.network, "init": config.init,
                "n_train": len(splits.y_train), "n_val": len(splits.y_val), "n_test": len(splits.y_test),
                "steps_per_epoch": -(-len(splits.y_train) // config.batch_size), "seed": seed,
                "params": int(sum(p.numel() for p in module.parameters()))}

        def on_epoch(hist: History) -> bool:
            e = hist.epochs
            silent = [n for n, ok in zip(names, np.isfinite(hist.alpha[-1]).any(0), strict=True) if not ok]
            if silent and np.isfinite(hist.train_loss[-1]):
                raise ConfigError(f"monitored layer {silent[0]!r} produced no tensor output during training",
                                  "pick layers that run in forward (see layers=conv_linear)")
            if not np.isfinite(hist.train_loss[-1]) or not np.isfinite(hist.alpha[-1]).all():
                raise ComputeError(f"training diverged at epoch {e} (non-finite loss or activations)",
                                   "lower the learning rate")
            metrics, arrays, live_info = assemble(hist, config, names, overhead, info)
            ctx.publish(self.name, {"metrics": metrics, "arrays": arrays, "info": live_info, "done": False,
                                    "epoch": e, "max_epochs": config.max_epochs})
            ctx.progress(0.02 + 0.97 * e / config.max_epochs,
                         f"epoch {e}/{config.max_epochs}: loss {hist.train_loss[-1]:.4f}, "
                         f"test acc {hist.test_acc[-1]:.3f}")
            return config.stop_training and metrics["stop_fired"] > 0

        hist = train_watch(module, names, splits, config, ctx, on_epoch, seed)
        metrics, arrays, info = assemble(hist, config, names, overhead, info)
        info["stopped_by_rule"] = bool(config.stop_training and metrics["stop_fired"])
        info["complete"] = True
        return LearningStopResult(self.name, metrics=metrics, checks=_checks(metrics, config), arrays=arrays,
                                  info=info)
