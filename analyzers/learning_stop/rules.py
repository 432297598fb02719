"""Stopping criteria on per-epoch curves: the learning-stop rule of Ahmad, Trahan & Islam
("When do CNNs stop learning?", arXiv 2403.02473) and two standard baselines.

Pure numpy, no torch: every function takes the curves recorded so far and answers "at which epoch
would this criterion have stopped training?". The rules are causal, so calling them on a prefix
of the curves (online, during training) gives the same answer as on the whole run.

Epochs are counted from 1: epoch ``e`` is the state after ``e`` full passes over the training set;
``curves[e - 1]`` holds that epoch's values. A return value of 0 means "did not fire".
"""

from __future__ import annotations

import numpy as np

#: per_layer = the authors' code (every layer's rounded mean unchanged), sum = the paper's text
#: (the signed sum of the changes over layers is zero), relative = per-layer relative tolerance
#: on the unrounded means (our option for scale-free comparisons, not in the paper)
VARIANTS = ("per_layer", "sum", "relative")
VARIANT_LABELS = {"per_layer": "paper rule (code: every layer unchanged)",
                  "sum": "paper text (sum of changes is zero)",
                  "relative": "relative tolerance (every layer)"}


def rounded_units(mu: np.ndarray, precision: int) -> np.ndarray:
    """Epoch means rounded to ``precision`` decimals, as exact integers in units of 10**-precision.

    mu: (E, L) float (per-epoch mean of each layer's output std). Returns int64 (E, L); comparing
    integers avoids float equality on rounded values (0.1 + 0.2 != 0.3).
    """
    return np.rint(np.asarray(mu, dtype=np.float64) * 10.0 ** precision).astype(np.int64)


def epoch_deltas(mu: np.ndarray, precision: int) -> np.ndarray:
    """delta_n^e = round(mu_n^e) - round(mu_n^(e-1)) in units of 10**-precision, int64 (E, L);
    row 0 (epoch 1 has no predecessor) is 0."""
    r = rounded_units(mu, precision)
    d = np.zeros_like(r)
    d[1:] = r[1:] - r[:-1]
    return d


def _stable(mu: np.ndarray, variant: str, precision: int, rel_tol: float) -> np.ndarray:
    """bool (E,): epoch e (row e-1) is unchanged from epoch e-1 under the variant; row 0 is False."""
    mu = np.asarray(mu, dtype=np.float64)
    out = np.zeros(mu.shape[0], dtype=bool)
    if mu.shape[0] < 2:
        return out
    if variant == "per_layer":
        out[1:] = (epoch_deltas(mu, precision)[1:] == 0).all(axis=1)
    elif variant == "sum":
        out[1:] = epoch_deltas(mu, precision)[1:].sum(axis=1) == 0
    elif variant == "relative":
        change = np.abs(mu[1:] - mu[:-1])
        out[1:] = (change <= rel_tol * np.abs(mu[:-1])).all(axis=1)
    else:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")
    return out


def learning_stop_epoch(mu: np.ndarray, *, precision: int = 2, warmup: int = 5, window: int = 5,
                        variant: str = "per_layer", rel_tol: float = 0.0) -> int:
    """The first epoch at which the learning-stop rule fires, 0 if it never does.

    mu: (E, L) per-epoch mean over training steps of each monitored layer's output std.
    Epochs 1..warmup only record. From epoch e = warmup + 1 on, the rule fires at e when the last
    ``window`` epochs (e - window + 1 .. e) all have the same rounded means, i.e. the
    ``window - 1`` consecutive changes are zero (per layer, or summed over layers for "sum").
    The window may reach back into the warm-up, as in the authors' code; training ends after
    epoch e. With the defaults (warm-up 5, window 5) the earliest stop is epoch 6; a plateau that
    starts at epoch k (k > 1) fires at max(k + window - 1, warmup + 1).
    """
    if window < 2:
        raise ValueError("window must be at least 2 (one change between two epochs)")
    stable = _stable(mu, variant, precision, rel_tol)
    run = 0
    for e in range(1, len(stable) + 1):
        run = run + 1 if stable[e - 1] else 0
        if e > warmup and e >= window and run >= window - 1:
            return e
    return 0


def patience_stop_epoch(val_loss: np.ndarray, *, patience: int = 10, min_delta: float = 0.0) -> int:
    """Validation early stopping (Keras/Lightning ``EarlyStopping`` on a loss, mode "min"):
    fires at the first epoch with ``patience`` epochs in a row that failed to improve on the best
    loss so far by more than ``min_delta``; returns that epoch (1-based) or 0.

    val_loss: (E,) float, per-epoch validation loss (nats).
    """
    best, wait = np.inf, 0
    for e, v in enumerate(np.asarray(val_loss, dtype=np.float64), start=1):
        if v < best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                return e
    return 0


def plateau_stop_epoch(train_loss: np.ndarray, *, patience: int = 10, min_delta: float = 1e-3) -> int:
    """Label-free training-loss plateau: the same patience logic on the training loss, with an
    absolute ``min_delta`` in nats. train_loss: (E,) float, mean loss over the epoch's steps."""
    return patience_stop_epoch(train_loss, patience=patience, min_delta=min_delta)


def saved_pct(stop_epoch: int, max_epochs: int) -> float:
    """Epochs saved, percent: 1 - E_stop / E_max (0 when the criterion did not fire)."""
    if stop_epoch <= 0 or max_epochs <= 0:
        return 0.0
    return 100.0 * (1.0 - stop_epoch / max_epochs)
