"""Cui et al.'s leave-one-subject-out protocol as sweep cells: one cell per held-out subject, run on the
sweep's executors (a local process pool, Ray) and cached by content, merged into the protocol's result.

``LOSO`` holds the ``split`` / ``merge`` hooks of workbench/sweep/split.py for eeg_saliency's Config (its
``loso_epochs``, ``loso_lr``, ``loso_folds`` and the run seed): pass it as ``hooks`` to ``run_split``. Each
cell calls :func:`fold_cell` (a function of this package: cells may only call their analyzer's own code),
which trains one fold exactly as ``loso.run_loso`` does, so the merged arrays and metrics equal the single
call's ``loso_*`` bit for bit on the CPU (same seed, same torch thread count).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analyzers._shared.findings import Findings
from analyzers.eeg_saliency.loso import LosoPlan, as_arrays, held_out, loso_data, run_fold
from analyzers.eeg_saliency.result import EegSaliencyResult
from workbench.core.errors import ComputeError, ConfigError
from workbench.core.result import Result

NAME = "eeg_saliency"
FOLD_CALL = "analyzers.eeg_saliency.loso_sweep:fold_cell"
FIELDS = ("accuracy", "n_windows", "drowsy_recall", "alert_recall")
LOSO_TARGET = 0.85  # the loso_mean_accuracy check's target on the synthetic set (the paper's real data: 0.78)


def _protocol_data(card, data_id: str):
    from workbench.data import get_samples

    return loso_data(card, data_id, None, [] if data_id.startswith("eeg_synth.drowsy") else get_samples(data_id))


def _card(model: str):
    from workbench.core.cards import get_card

    return get_card(model)


def fold_cell(card, data_id: str | None, args: dict, ctx) -> Result:
    """A call cell: train on every subject but ``args["subject"]`` and score on it (see loso.run_fold).
    Metrics: the fold's accuracy, windows, drowsy and alert recall."""
    if card is None:
        raise ConfigError("the leave-one-subject-out protocol needs an EEG card", "give --model eeg_compact.synth")
    x, y, subjects = _protocol_data(card, data_id or card.default_data)
    s = int(args["subject"])
    if s not in set(subjects.tolist()):
        raise ConfigError(f"subject {s} is not in {data_id}", "split the call again: the data changed")
    plan = LosoPlan(int(args["epochs"]), float(args["lr"]), 0, ctx.seed)
    fold = run_fold(card, x, y, subjects, s, plan,
                    lambda f, m: ctx.progress(f, f"LOSO subject {s}: {m}"))
    return Result(NAME, metrics=dict(zip(FIELDS, fold, strict=True)),
                  arrays={"fold": np.array(fold, dtype=np.float64), "subject": np.array([s], np.int64)})


def split(config: dict, seed: int, model: str, data: str | None) -> list[dict]:
    """One call cell per held-out subject, in the protocol's order."""
    if not model:
        raise ConfigError("the leave-one-subject-out protocol needs an EEG card", "give --model eeg_compact.synth")
    card = _card(model)
    _, _, subjects = _protocol_data(card, data or card.default_data)
    plan = LosoPlan(config["loso_epochs"], config["loso_lr"], config["loso_folds"], seed)
    return [{"params": {"subject": s, "epochs": plan.epochs, "lr": plan.lr}, "seed": seed, "call": FOLD_CALL}
            for s in held_out(subjects, plan).tolist()]


def protocol_findings(res: dict, data_id: str | None = None) -> Findings:
    """The ``loso_*`` arrays and metrics of a finished protocol (as eeg_saliency reports them), with the
    ``loso_mean_accuracy`` check when ``data_id`` names the synthetic set (its target is known)."""
    acc = res["accuracy"]
    out = Findings(arrays={f"loso_{k}": v for k, v in res.items()},
                   metrics={"loso_mean_acc": float(acc.mean()), "loso_std_acc": float(acc.std()),
                            "loso_min_acc": float(acc.min()), "loso_folds": float(len(acc))})
    if data_id is not None and data_id.startswith("eeg_synth.drowsy"):
        out.check("loso_mean_accuracy", acc.mean() >= LOSO_TARGET, float(acc.mean()), LOSO_TARGET,
                  f"mean of per-subject accuracies over {len(acc)} held-out subject(s) on the "
                  f"synthetic set (paper, real data: 0.78)")
    return out


def _protocol(parts: list[Result]) -> dict:
    """The protocol's arrays (as loso.run_loso returns them) from its fold cells, in split order."""
    folds = [tuple(p.arrays["fold"].tolist()) for p in parts]
    if not folds:
        raise ComputeError("the protocol had no fold", "check loso_folds and the data's subjects")
    folds = [(float(a), int(n), float(d), float(al)) for a, n, d, al in folds]
    held = np.array([int(p.arrays["subject"][0]) for p in parts], np.int64)
    return as_arrays(held, folds)


def merge(config: dict, seed: int, parts: list[Result]) -> EegSaliencyResult:
    """The protocol's result from the fold cells (split order): ``loso_*`` arrays and metrics."""
    out = protocol_findings(_protocol(parts))
    out.info["loso_plan"] = {"epochs": config["loso_epochs"], "lr": config["loso_lr"], "seed": seed}
    return out.result(EegSaliencyResult, NAME)


def split_call(config: dict, seed: int, model: str, data: str | None) -> list[dict] | None:
    """eeg_saliency's ``split`` hook: with loso on, one cell for the call with loso off and one per held-out
    subject; with loso off None (the sweep then splits the data set into chunks of samples). The main cell runs
    the call's whole data id: over a data set the runner chunks and merges it inside the cell exactly as a single
    call does (an analyzer may not import workbench.sweep's chunk cells)."""
    if not config["loso"]:
        return None  # nothing of its own to split: the sweep cuts the data set into chunks (workbench/sweep/split.py)
    return [{"params": {"loso": False}, "seed": seed, "call": ""}, *split(config, seed, model, data)]


def merge_call(config: dict, seed: int, parts: list[Result]) -> Result:
    """eeg_saliency's ``merge`` hook: the main cell's result with the protocol's ``loso_*`` arrays, metrics and
    check added as the single call adds them (over a data set each chunk adds the same protocol: its metrics and
    arrays merge by "first", its check by "first" with the data-set run's note)."""
    result, folds = parts[0], parts[1:]
    if "fold" in result.arrays or any("fold" not in p.arrays for p in folds):
        raise ComputeError("the split eeg_saliency call lost its cell order", "run the split call again")
    if not config["loso"]:
        return result
    if result.info.get("layout") != "cui":
        raise ConfigError("the variant table and the LOSO protocol are defined on Cui et al.'s layout only",
                          "use eeg_compact.synth, or turn variants and loso off")
    got = protocol_findings(_protocol(folds), result.data)
    n = int((result.info.get("dataset") or {}).get("chunks", 1))
    # the chunks of a data-set run share one protocol: its check holds on all of them or on none (value: the first's)
    got.checks = [dataclasses.replace(c, message=c.message + (f" [held on {n if c.passed else 0}/{n} chunks of the "
                                                              f"data set]" if n > 1 else "")) for c in got.checks]
    result.arrays.update(got.arrays)
    result.metrics.update(got.metrics)
    checks = [c for c in result.checks if c.name != "finite_values"]
    result.checks = checks + got.checks + [c for c in result.checks if c.name == "finite_values"]
    return result


class LOSO:
    """The hooks object for ``workbench.sweep.split.run_split(..., hooks=LOSO)``."""

    split = staticmethod(split)
    merge = staticmethod(merge)
