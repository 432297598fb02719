"""Learning-stop detection: tests that can fail.

Rule on planted curves (plateau from epoch k stops in [k, k + window]; a changing curve never stops;
never inside the warm-up; the text variant's cancellation trap), the baselines, ctx.publish, the
analyzer on small trainable cards (lr = 0 stops right after warm-up; hooks and the shared model
untouched after a run and after an error; really-stop vs train-on; a cancelled job is not treated
as finished), the paper's digits target at small scale with an unrounded control, and the page.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from analyzers.learning_stop.monitor import StdMonitor, measure_overhead, resolve_layers, stage_outputs
from analyzers.learning_stop.rules import (
    epoch_deltas,
    learning_stop_epoch,
    patience_stop_epoch,
    plateau_stop_epoch,
    rounded_units,
    saved_pct,
)
from analyzers.learning_stop.train import PaperCNN, optimizer_factory, split_validation
from workbench.core.cards import ModelCard, get_card, list_cards, register_card
from workbench.core.errors import Cancelled, ConfigError, UnsupportedModelError
from workbench.core.hooks import count_hooks
from workbench.core.result import Result
from workbench.runtime import RunContext, RunSpec, load_model, run, start_job

# ---- planted curves ------------------------------------------------------------------------------


def plateau_curve(k: int, epochs: int = 60, layers: int = 3, seed: int = 0) -> np.ndarray:
    """(epochs, layers): every layer moves by >= 0.02 per epoch up to epoch k, then stays put (all
    layers move the same way in an epoch, so the summed change cannot cancel either)."""
    rng = np.random.default_rng(seed)
    steps = rng.uniform(0.02, 0.05, size=(epochs, layers)) * rng.choice([-1, 1], size=(epochs, 1))
    mu = 1.0 + np.cumsum(steps, axis=0)
    if k <= epochs:
        mu[k - 1:] = mu[k - 1]
    return mu


@pytest.mark.parametrize("k", [2, 4, 9, 17, 33])
@pytest.mark.parametrize("window", [2, 5, 8])
@pytest.mark.parametrize("variant", ["per_layer", "sum"])
def test_plateau_from_epoch_k_stops_within_the_window(k, window, variant):
    mu = plateau_curve(k)
    e = learning_stop_epoch(mu, precision=2, warmup=5, window=window, variant=variant)
    assert e == max(k + window - 1, 5 + 1, window)
    assert k <= e <= k + window or e == 6  # a plateau inside the warm-up fires right after it


def test_a_curve_that_keeps_changing_never_stops():
    mu = plateau_curve(61)  # never flat
    for v in ("per_layer", "sum", "relative"):
        assert learning_stop_epoch(mu, precision=2, warmup=5, window=5, variant=v, rel_tol=1e-3) == 0
    # a slow drift (0.004 per epoch) crosses a 0.01 rounding step every 2-3 epochs: never 5 flat epochs
    drift = 0.3 + 0.004 * np.arange(80)[:, None] * np.ones((1, 2))
    assert learning_stop_epoch(drift, precision=2) == 0
    assert learning_stop_epoch(drift, precision=1) > 0  # coarser rounding hides it: p is the hyperparameter


def test_never_fires_inside_the_warm_up():
    flat = np.full((40, 4), 0.5)
    for warmup in (0, 3, 5, 12):
        e = learning_stop_epoch(flat, precision=2, warmup=warmup, window=5)
        assert e == max(warmup + 1, 5)
    assert learning_stop_epoch(flat[:5], warmup=5) == 0  # not enough epochs yet


def test_text_variant_lets_opposite_changes_cancel_but_the_code_rule_does_not():
    e = np.arange(30, dtype=float)
    mu = np.stack([1.0 + 0.01 * e, 2.0 - 0.01 * e], axis=1)  # both layers still moving
    assert learning_stop_epoch(mu, variant="per_layer") == 0
    assert learning_stop_epoch(mu, variant="sum") == 6  # the documented trap of summing signed deltas


def test_rounding_is_exact_and_deltas_are_integers():
    mu = np.array([[0.1 + 0.2], [0.3], [0.30499], [0.306]])
    assert rounded_units(mu, 2)[:, 0].tolist() == [30, 30, 30, 31]
    assert epoch_deltas(mu, 2)[:, 0].tolist() == [0, 0, 0, 1]
    assert epoch_deltas(mu, 2).dtype == np.int64


def test_relative_variant_uses_unrounded_means():
    mu = 1.0 + 1e-4 * np.arange(30)[:, None] * np.ones((1, 2))
    assert learning_stop_epoch(mu, variant="relative", rel_tol=1e-3) == 6
    assert learning_stop_epoch(mu, variant="relative", rel_tol=1e-5) == 0


def test_patience_and_plateau_baselines():
    val = np.r_[np.linspace(2.0, 0.5, 10), np.full(20, 0.6)]  # best at epoch 10
    assert patience_stop_epoch(val, patience=5) == 15
    assert patience_stop_epoch(val[:14], patience=5) == 0
    train = np.r_[np.linspace(2.0, 0.1, 10), 0.1 - 1e-4 * np.arange(1, 21)]  # improves by < 1e-3 per epoch
    assert plateau_stop_epoch(train, patience=4, min_delta=1e-3) == 14
    assert plateau_stop_epoch(train, patience=4, min_delta=0.0) == 0
    assert saved_pct(25, 100) == 75.0 and saved_pct(0, 100) == 0.0


def test_stratified_validation_split_is_seeded_and_disjoint():
    y = np.repeat(np.arange(4), 50)
    tr, va = split_validation(y, 0.1, 3)
    assert len(va) == 20 and np.bincount(y[va]).tolist() == [5] * 4 and not set(tr) & set(va)
    assert np.array_equal(va, split_validation(y, 0.1, 3)[1])
    assert not np.array_equal(va, split_validation(y, 0.1, 4)[1])


# ---- shared RunContext facility ---------------------------------------------------------------------


def test_publish_replaces_snapshots_without_mutating_what_readers_hold():
    ctx = RunContext()
    ctx.publish("a", {"epoch": 1})
    held = ctx.live
    ctx.publish("a", {"epoch": 2})
    ctx.publish("b", np.arange(3))
    assert held == {"a": {"epoch": 1}} and ctx.live["a"] == {"epoch": 2} and ctx.live["b"].tolist() == [0, 1, 2]

    def writer(i):
        for j in range(200):
            ctx.publish(f"t{i}", j)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(ctx.live[f"t{i}"] == 199 for i in range(4)) and "a" in ctx.live


# ---- the monitor ----------------------------------------------------------------------------------


def test_monitor_records_the_unbiased_std_over_the_whole_batch_tensor_and_leaves_no_hook():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
    x = torch.randn(5, 1, 6, 6)
    with StdMonitor(net, ["0", "1"]) as mon:
        net(x)  # inactive: nothing recorded
        mon.active = True
        out = net(x)
        mon.collect()
        vals = mon.drain()
        with pytest.raises(RuntimeError):
            with StdMonitor(net, ["1"]):
                raise RuntimeError("boom")
    assert count_hooks(net) == 0 and vals.shape == (1, 2)
    assert vals[0, 1] == pytest.approx(float(out.detach().std()), rel=1e-6)
    assert vals[0, 0] == pytest.approx(float(np.std(net[0](x).detach().numpy(), ddof=1)), rel=1e-5)


def test_overhead_timing_leaves_the_model_and_the_random_stream_alone():
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 3))
    x, y = torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)
    before, rng = _state(net), torch.get_rng_state()
    r = measure_overhead(net, optimizer_factory("sgd", 0.1, 0.9, 0.0), x, y, ["2"], pairs=3)
    assert torch.equal(torch.get_rng_state(), rng) and count_hooks(net) == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert len(r["times_with"]) == len(r["times_without"]) == 3 and np.isfinite(r["overhead_pct"])


def test_overhead_timing_reports_every_pair_and_a_cancel_stops_it_there():
    """The timing phase of a large model takes minutes: cancel must act between its pairs, not after."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    x, y = torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)
    seen: list[float] = []
    measure_overhead(net, optimizer_factory("sgd", 0.1, 0.9, 0.0), x, y, ["1"], pairs=4, on_step=seen.append)
    assert seen == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    ctx, calls = RunContext(), []

    def step(f: float) -> None:
        calls.append(f)
        if len(calls) == 2:
            ctx.cancel.cancel()
        ctx.progress(f, "timing the monitor")

    with pytest.raises(Cancelled):
        measure_overhead(net, optimizer_factory("sgd", 0.1, 0.9, 0.0), x, y, ["1"], pairs=50, on_step=step)
    assert len(calls) == 2 and count_hooks(net) == 0


def test_stage_outputs_pick_the_papers_block_outputs():
    net = PaperCNN((1, 16, 16), 10)
    assert stage_outputs(net, (1, 16, 16)) == ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]
    assert resolve_layers(net, "conv_linear", (1, 16, 16)) == [f"blocks.{i}.0" for i in range(4)] + ["fc"]
    with pytest.raises(ConfigError):
        resolve_layers(net, "blocks.0,nope", (1, 16, 16))


# ---- small trainable cards --------------------------------------------------------------------------


class BarsCNN(nn.Module):
    """(N, 1, 8, 8) -> (N, 3) logits, no BatchNorm and no dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                                      nn.Conv2d(6, 8, 3, padding=1), nn.MaxPool2d(2), nn.ReLU())
        self.fc = nn.Linear(8 * 2 * 2, 3)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def bars_data(split: str):
    """Planted 3-class data: a horizontal, vertical or diagonal bar plus noise; (N, 1, 8, 8), (N,)."""
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 240 if split == "train" else 90
    y = np.arange(n) % 3
    x = rng.normal(0, 0.3, size=(n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        p = rng.integers(1, 7)
        if c == 0:
            x[i, 0, p, :] += 1.0
        elif c == 1:
            x[i, 0, :, p] += 1.0
        else:
            x[i, 0, np.arange(8), np.arange(8)] += 1.0
    return x, y.astype(np.int64)


def digits8_data(split: str):
    """sklearn digits at their native 8x8, normalised with mean = std = 0.5 as in the paper's code."""
    from workbench.data.registry import dataset_arrays

    x, y = dataset_arrays("digits", split)
    return ((x - 0.5) / 0.5)[:, None].astype(np.float32), y


def _card(card_id: str, build, data, shape, classes) -> ModelCard:
    def build_seeded():
        torch.manual_seed(0)
        return build()

    return ModelCard(id=card_id, kind="image2d", title=card_id, architecture="test", input_shape=shape,
                     build=build_seeded, loader=lambda c: build_seeded().eval(),
                     status=lambda c: {"available": True, "sha256": "1" * 64},
                     preprocess=lambda s: np.zeros(shape, np.float32), display=lambda s: np.zeros((8, 8, 3)),
                     weights_source="random", dataset="test", class_names=classes, default_data="digits:0",
                     extra={"training_data": data})


@pytest.fixture(scope="session")
def bars_card() -> str:
    list_cards()
    for card in (_card("bars_cnn.test", BarsCNN, bars_data, (1, 8, 8), ("h", "v", "d")),
                 _card("digits8_paper.test", lambda: PaperCNN((1, 8, 8), 10), digits8_data, (1, 8, 8),
                       tuple("0123456789"))):
        if card.id not in {c.id for c in list_cards()}:
            register_card(card)
    return "bars_cnn.test"


PAPER_RULE = {"warmup": "5", "window": "5", "lr_step": "30"}  # the paper's schedule (the defaults are quicker)
FAST = {"max_epochs": "12", "overhead_pairs": "2", "batch_size": "32", **PAPER_RULE}


def _state(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_learning_rate_zero_freezes_the_statistics_and_stops_right_after_warm_up(bars_card):
    r = run(RunSpec("learning_stop", bars_card, None, {**FAST, "lr": "0", "batch_size": "512"}, device="cpu"))
    mu = r.arrays["mu"]
    assert mu.shape == (12, 2) and np.ptp(mu, axis=0).max() < 1e-6  # one full batch: nothing can move
    assert r.metrics["stop_epoch"] == 6 and r.metrics["stop_fired"] == 1  # warm-up 5, window 5
    assert r.metrics["epochs_trained"] == 12 and r.metrics["epochs_saved_pct"] == pytest.approx(50.0)
    assert r.metrics["acc_at_stop"] == r.metrics["acc_at_end"]
    assert np.all(r.arrays["delta"] == 0)


def test_a_run_trains_monitors_and_leaves_the_shared_model_untouched(bars_card):
    shared = load_model(bars_card, "cpu").module
    before = _state(shared)
    r = run(RunSpec("learning_stop", bars_card, None, {**FAST, "init": "pretrained", "lr": "0.05"},
                    device="cpu"))
    assert count_hooks(shared) == 0 and not shared.training
    assert all(torch.equal(before[k], v) for k, v in shared.state_dict().items())
    assert r.info["layers"] == ["features.2", "features.5"] and r.info["complete"] is True
    assert r.arrays["train_loss"][-1] < r.arrays["train_loss"][0]  # it did learn
    assert r.arrays["test_acc"][-1] > 0.8
    assert r.arrays["alpha"].shape == (12 * 7, 2) and np.isfinite(r.arrays["alpha"]).all()
    for m in ("stop_epoch", "epochs_saved_pct", "acc_at_stop", "acc_at_end", "patience_stop_epoch",
              "monitor_overhead_pct"):
        assert np.isfinite(r.metrics[m])
    assert {c.name for c in r.checks} >= {"rule_fired", "monitor_overhead", "finite_values"}
    assert len(r.figures()) == 6


def test_bad_layers_and_cards_without_data_are_refused(bars_card, toy_card):
    with pytest.raises(ConfigError):
        run(RunSpec("learning_stop", bars_card, None, {**FAST, "layers": "features.0,no_such"}, device="cpu"))
    with pytest.raises(ConfigError):
        run(RunSpec("learning_stop", bars_card, None, {"network": "paper_cnn", "init": "pretrained"}))
    with pytest.raises(UnsupportedModelError, match="no built-in training data"):
        run(RunSpec("learning_stop", toy_card.id, None, FAST, device="cpu"))


def test_really_stop_ends_training_at_the_rule_and_train_on_marks_it(bars_card):
    cfg = {**FAST, "lr": "0", "max_epochs": "20"}
    stop = run(RunSpec("learning_stop", bars_card, None, {**cfg, "stop_training": "true"}, device="cpu"))
    on = run(RunSpec("learning_stop", bars_card, None, cfg, device="cpu"))
    assert stop.metrics["epochs_trained"] == stop.metrics["stop_epoch"] == 6 and stop.info["stopped_by_rule"]
    assert on.metrics["epochs_trained"] == 20 and on.metrics["stop_epoch"] == 6 and not on.info["stopped_by_rule"]
    assert not any(c.name == "accuracy_kept" for c in stop.checks)  # no end to compare with


def test_runs_overlay(bars_card, tmp_path):
    a = run(RunSpec("learning_stop", bars_card, None, {**FAST, "lr": "0.05", "seed": "1"}, device="cpu"))
    b = run(RunSpec("learning_stop", bars_card, None, {**FAST, "lr": "0.01", "seed": "2"}, device="cpu"))
    assert not np.array_equal(a.arrays["mu"], b.arrays["mu"])
    over = type(a).overlay([a, b])
    figs = Result.load(over.save(tmp_path / "o")).figures()
    assert len(figs) == 2 and len(figs[0].data) == 6 and "lr=0.01" in str(figs[1].data[0].cells.values)


def test_a_cancelled_job_is_not_treated_as_finished_and_a_rerun_starts_over(bars_card):
    job = start_job(RunSpec("learning_stop", bars_card, None, {**FAST, "max_epochs": "400"}, device="cpu"))
    deadline = time.time() + 60
    while not job.ctx.live.get("learning_stop") and time.time() < deadline:
        time.sleep(0.02)
    job.cancel()
    job.wait(60)
    snap = job.ctx.live["learning_stop"]
    assert job.state == "cancelled" and job.result is None
    assert snap["done"] is False and snap["epoch"] < 400 and "complete" not in snap["info"]
    again = run(RunSpec("learning_stop", bars_card, None, {**FAST, "max_epochs": "7"}, device="cpu"))
    assert again.metrics["epochs_trained"] == 7 and again.info["complete"] is True


# ---- the paper's target at small scale ----------------------------------------------------------------


def test_digits_paper_cnn_stops_early_without_losing_accuracy(bars_card):
    """Paper-style CNN on 8x8 sklearn digits, SGD 0.1 / momentum 0.9 / wd 5e-4, batch 64, decays every
    30 epochs (digest 3(d): precision 2 stops around epoch 26 of 150). The run is cut at 30 epochs:
    the rule must fire by epoch 30 (a fifth of 150) within one point of the accuracy at the end,
    and the stop epoch must grow with the precision."""
    r = run(RunSpec("learning_stop", "digits8_paper.test", None,
                    {"network": "paper_cnn", "max_epochs": "30", "overhead_pairs": "3", **PAPER_RULE}, device="cpu"))
    m = r.metrics
    assert m["stop_fired"] == 1 and 10 <= m["stop_epoch"] <= 30, m["stop_epoch"]
    assert m["acc_at_stop"] >= m["acc_at_end"] - 0.01 and m["acc_at_end"] > 0.95
    p1, p2, p3 = m["stop_epoch_p1"], m["stop_epoch_p2"], m["stop_epoch_p3"]
    assert 0 < p1 <= p2 == m["stop_epoch"] and (p3 == 0 or p3 >= p2)
    # control that must break the method: without rounding (p = 8) the same curves never look flat
    assert learning_stop_epoch(r.arrays["mu"], precision=8) == 0
    assert next(c for c in r.checks if c.name == "accuracy_kept").passed


@pytest.mark.zoo("digits_vgg.sk")
def test_digits_vgg_card_runs_with_its_stage_outputs():
    card = get_card("digits_vgg.sk")
    net = card.build()
    assert resolve_layers(net, "auto", card.input_shape) == ["features.pool1", "features.pool2", "features.pool3"]
    assert resolve_layers(net, "card", card.input_shape, card.layers_of_interest)[0] == "features.conv4"


# ---- the page -------------------------------------------------------------------------------------------

APP = str(Path(__file__).resolve().parents[3] / "workbench" / "app.py")


@pytest.mark.zoo("digits_vgg.sk")
def test_page_trains_live_and_overlays_two_runs():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/learning_stop.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="learning_stop.max_epochs").set_value(3)
    at.number_input(key="learning_stop.overhead_pairs").set_value(2).run()
    saw_live = False
    for seed in (0, 1):
        at.number_input(key="learning_stop.seed").set_value(seed).run()
        next(b for b in at.button if b.label == "Train and watch").click().run()
        deadline = time.time() + 150
        while len(at.session_state["learning_stop.runs"]) <= seed and time.time() < deadline:
            time.sleep(0.5)
            at.run()
            saw_live |= any("(live;" in c.value for c in at.caption)  # curves drawn while training
        assert not at.exception, [e.value for e in at.exception]
    assert saw_live
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "Criteria compared" in specs and "Runs overlaid" in specs
    next(b for b in at.button if b.label == "Add overlay to report").click().run()
    assert at.session_state["basket"][-1].info["overlay"] is True
