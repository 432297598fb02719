"""Leave-one-subject-out evaluation of an EEG card's training recipe (Cui et al.'s protocol).

For every held-out subject a fresh network is trained on all other subjects with the card's own
``extra["fit"]`` (the recipe of ``make zoo``; epochs and learning rate may be overridden for CPU)
and scored on the held-out subject's windows. The reported figure is the mean of the per-subject
accuracies (not the pooled accuracy), as in the paper, with their spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workbench.core.errors import ConfigError, DataError


def loso_data(card, data_id: str, batch_x: torch.Tensor, samples: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (N, 30, 384) model-ready float32, y (N,) int64, subject (N,) int64) for the protocol.

    The synthetic set (any ``eeg_synth.drowsy`` id) is used whole, all 11 subjects; a user file is used
    as given and must carry labels and at least two subjects (the published .mat does)."""
    from workbench.data import get_samples

    if data_id.startswith("eeg_synth.drowsy"):
        samples = get_samples("eeg_synth.drowsy:all")
        x = np.stack([card.preprocess(s) for s in samples]).astype(np.float32)
    elif batch_x is not None and len(batch_x) == len(samples):
        x = batch_x.detach().cpu().numpy()
    else:  # a chunk of a data-set run: the protocol needs every window of the file
        x = np.stack([card.preprocess(s) for s in samples]).astype(np.float32)
    labels = [s.label for s in samples]
    subjects = [s.meta.get("subject") for s in samples]
    if any(v is None for v in labels):
        raise DataError(f"{data_id}: the leave-one-subject-out protocol needs labelled windows",
                        "use the published .mat (substate) or eeg_synth.drowsy")
    if len(set(subjects)) < 2:
        raise DataError(f"{data_id}: the leave-one-subject-out protocol needs at least two subjects",
                        "use the published .mat (subindex) or eeg_synth.drowsy")
    return x, np.array(labels, dtype=np.int64), np.array(subjects, dtype=np.int64)


@dataclass(frozen=True)
class LosoPlan:
    """How to run the protocol: ``epochs`` and ``lr`` override the card's recipe when non-zero; ``folds``
    > 0 holds out only the first ``folds`` subjects (a quicker, partial protocol); ``seed`` of every fold."""

    epochs: int = 0
    lr: float = 0.0
    folds: int = 0
    seed: int = 0


def held_out(subjects: np.ndarray, plan: LosoPlan) -> np.ndarray:
    """The subjects held out in turn (S,) int64: every subject, or the first ``plan.folds``."""
    return np.unique(subjects)[: plan.folds or None].astype(np.int64)


def recipe(card):
    """The card's training recipe ``fit(x, y, seed=, progress=, epochs=, lr=) -> module``; ConfigError if none."""
    fit = card.extra.get("fit")
    if fit is None:
        raise ConfigError(f"{card.id} has no training recipe, so the protocol cannot retrain it",
                          "use eeg_compact.synth or switch loso off")
    return fit


def run_fold(card, x: np.ndarray, y: np.ndarray, subjects: np.ndarray, s: int, plan: LosoPlan,
             report) -> tuple[float, int, float, float]:
    """One fold: train on every subject but ``s`` (the card's recipe, seed ``plan.seed``), score on ``s``.
    Returns (accuracy, windows of s, drowsy recall, alert recall); ``report(fraction, message)`` per batch.
    Each fold depends on nothing but its inputs, so folds may run anywhere (analyzers/eeg_saliency/loso_sweep.py)."""
    fit = recipe(card)
    kwargs = {k: v for k, v in (("epochs", plan.epochs), ("lr", plan.lr)) if v}
    train, test = subjects != s, subjects == s
    model = fit(x[train], y[train], seed=plan.seed, progress=report, **kwargs)
    with torch.no_grad():
        pred = model(torch.from_numpy(x[test])).argmax(1).numpy()
    truth = y[test]
    return (float((pred == truth).mean()), int(test.sum()),
            float((pred[truth == 1] == 1).mean()) if (truth == 1).any() else 0.0,
            float((pred[truth == 0] == 0).mean()) if (truth == 0).any() else 0.0)


def as_arrays(held: np.ndarray, folds: list[tuple[float, int, float, float]]) -> dict:
    """The protocol's arrays from per-fold (accuracy, windows, drowsy recall, alert recall), in ``held`` order."""
    acc, n, rec_d, rec_a = (list(col) for col in zip(*folds, strict=True)) if folds else ([], [], [], [])
    return {"subjects": held.astype(np.int64), "accuracy": np.array(acc, np.float32),
            "n_windows": np.array(n, np.int64), "drowsy_recall": np.array(rec_d, np.float32),
            "alert_recall": np.array(rec_a, np.float32)}


def run_loso(card, x: np.ndarray, y: np.ndarray, subjects: np.ndarray, plan: LosoPlan, progress) -> dict:
    """Train and score one network per held-out subject: x (N, 30, T) float32, y (N,) int64, subjects (N,).

    ``progress(fraction, message)`` is called after every training batch (it raises to cancel).
    Returns subjects (S,), accuracy (S,), n_windows (S,), drowsy_recall (S,), alert_recall (S,) arrays.
    """
    recipe(card)
    held = held_out(subjects, plan)
    folds = []
    for k, s in enumerate(held.tolist()):
        span = (k / len(held), (k + 1) / len(held))

        def report(f: float, msg: str, s=s, span=span) -> None:
            progress(span[0] + (span[1] - span[0]) * f, f"LOSO subject {s}: {msg}")

        folds.append(run_fold(card, x, y, subjects, s, plan, report))
    return as_arrays(held, folds)
