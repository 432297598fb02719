"""Transferability tests that can fail: CKA / SVCCA / LogME / LEEP against their defining properties,
frozen layers really frozen (and a control that must break that), the small-scale reproduction targets
on mnist1d, resume after a cancel, the runner's --data path, the paper's released numbers, the page."""

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from threadpoolctl import threadpool_limits

from analyzers.transferability import grid as tg
from analyzers.transferability import nets as tn
from analyzers.transferability.analyzer import Transferability, class_split
from analyzers.transferability.grid import TREATMENTS
from analyzers.transferability.plots import PAPER_BASE, accuracy_figure
from analyzers.transferability.scores import leep, logme, logme_literal, softmax
from analyzers.transferability.similarity import linear_cka, svcca
from workbench.core.errors import Cancelled, ConfigError
from workbench.runtime import RunContext, RunSpec, run
from workbench.runtime.runner import config_values

APP = str(Path(__file__).resolve().parents[3] / "workbench" / "app.py")
SMALL = {"num_samples": 3000, "epochs": 8, "seeds": 2, "cuts": "2,4", "probe_samples": 300, "umap": True}
TINY = {"dataset": "digits", "cuts": "2", "seeds": 1, "epochs": 2, "umap": False}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """numpy linear algebra on one BLAS thread, as in the analyzer (spinning threads on shared cores)."""
    with threadpool_limits(1):
        yield


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---- similarity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("unbiased", [False, True])
def test_cka_is_one_under_orthogonal_maps_and_isotropic_scaling(unbiased):
    x = _rng().normal(size=(200, 30))
    q, _ = np.linalg.qr(_rng(1).normal(size=(30, 30)))
    assert linear_cka(x, x @ q, unbiased) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 3.7 * x, unbiased) == pytest.approx(1.0, abs=1e-10)
    # control: an ill-conditioned invertible map is NOT an invariance of CKA
    assert linear_cka(x, x @ np.diag(np.logspace(-3, 3, 30)), unbiased) < 0.9


def test_cka_gram_form_equals_the_feature_space_formula():
    x, y = _rng().normal(size=(150, 12)), _rng(1).normal(size=(150, 7))
    y[:, 0] += x[:, 0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    direct = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(x, y) == pytest.approx(direct, rel=1e-10)


def test_cka_of_independent_random_features_is_near_zero():
    x, y = _rng().normal(size=(2000, 16)), _rng(1).normal(size=(2000, 16))
    assert linear_cka(x, y) < 0.05
    assert abs(linear_cka(x, y, unbiased=True)) < 0.02


def test_svcca_is_one_under_invertible_maps_and_low_for_independent_features():
    x = _rng().normal(size=(500, 20))
    a = _rng(1).normal(size=(20, 20))
    assert svcca(x, x @ a, keep=1.0) == pytest.approx(1.0, abs=1e-8)
    assert svcca(x, _rng(2).normal(size=(500, 10))) < 0.25
    conv = _rng(3).normal(size=(400, 8, 5))  # (N, C, T): averaged over T first
    assert svcca(conv, conv * 2.0) == pytest.approx(1.0, abs=1e-8)


# ---- transferability scores -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(60, 100), (200, 20)])
def test_logme_fast_path_equals_the_literal_evidence(shape):
    f = _rng().normal(size=shape)
    y = _rng(1).integers(0, 4, size=shape[0])
    f[:, 0] += 2 * (y == 1)
    assert logme(f, y) == pytest.approx(logme_literal(f, y), rel=1e-6, abs=1e-8)


def test_logme_prefers_informative_features_over_random_ones():
    y = _rng().integers(0, 5, size=500)
    informative = np.eye(5)[y] + 0.3 * _rng(1).normal(size=(500, 5))
    random = _rng(2).normal(size=(500, 5))
    assert logme(informative, y) > logme(random, y) + 0.2


def test_leep_is_nonpositive_close_to_minus_cross_entropy_for_the_task_itself_and_ranks_sources():
    y = _rng().integers(0, 5, size=800)
    for seed in range(5):
        assert leep(softmax(_rng(seed).normal(size=(800, 7)) * 3), y) <= 0
    assert leep(np.eye(5)[y], y) == pytest.approx(0.0, abs=1e-12)  # a perfect source of the task itself
    own = 0.99 * np.eye(5)[y] + 0.0025  # a confident source trained on the target labels
    ce = -np.log(own[np.arange(800), y]).mean()
    assert leep(own, y) == pytest.approx(-ce, abs=0.02)
    noise = softmax(_rng(9).normal(size=(800, 5)))
    assert leep(own, y) > leep(noise, y) + 0.5


# ---- networks and the grid ---------------------------------------------------------------------

def _digits_tasks(a=(0, 1, 2, 3, 4), b=(5, 6, 7, 8, 9)):
    arrays = tn.load_arrays("digits", 0)
    return {"a": tn.task_tensors(arrays, a, "cpu"), "b": tn.task_tensors(arrays, b, "cpu")}


def test_frozen_layers_stay_unchanged_and_bn_in_train_mode_breaks_the_check():
    spec = tg.GridSpec("digits", 0, (0, 1, 2, 3, 4), (5, 6, 7, 8, 9), (2,), (0,), 1, 3e-3, 128,
                       random_control=True, cache_features=False)
    tasks = _digits_tasks()
    tg.clear_caches()
    ok = tg.Grid(spec, tasks, lambda f, m="": None).run()
    frozen = ok.frozen_ok[ok.frozen_ok >= 0]
    assert len(frozen) == 3 and (frozen == 1).all()  # BnB, AnB, random frozen
    tg.clear_caches()
    broken = tg.Grid(spec, tasks, lambda f, m="": None, freeze_bn=False).run()  # control
    assert (broken.frozen_ok[broken.frozen_ok >= 0] == 0).all()
    tg.clear_caches()
    cached = tg.Grid(dataclasses.replace(spec, cache_features=True), tasks, lambda f, m="": None).run()
    assert np.abs(cached.acc - ok.acc).max() <= 0.02  # cached trunk features change the speed, not the numbers
    tg.clear_caches()


def test_class_split_is_seeded_and_validated():
    a, b = class_split(10, "", 3)
    assert len(a) == 5 and set(a) | set(b) == set(range(10)) and class_split(10, "", 3) == (a, b)
    assert class_split(10, "7,1", 0) == ((1, 7), (0, 2, 3, 4, 5, 6, 8, 9))
    with pytest.raises(ConfigError):
        class_split(10, "0,1,2,3,4,5,6,7,8", 0)
    with pytest.raises(ConfigError):
        class_split(10, "0,12", 0)


def test_cancelled_run_resumes_without_retraining_finished_cells():
    tg.clear_caches()
    ctx, cells = RunContext(), set()

    def on_progress(fraction, message):
        if message.startswith("cell "):
            cells.add(message.split(":")[0])
            if len(cells) == 4:  # cancel as the 4th cell starts: 3 are finished
                ctx.cancel.cancel()

    ctx.on_progress = on_progress
    with pytest.raises(Cancelled):
        run(RunSpec("transferability", "", None, TINY, device="cpu"), ctx)
    ctx2 = RunContext()
    resumed = run(RunSpec("transferability", "", None, TINY, device="cpu"), ctx2)
    assert resumed.metrics["cells_reused"] == 3 and resumed.metrics["cells_trained"] == 4
    snapshot = ctx2.live["transfer_grid"]  # what the page's live view draws while the job runs
    assert snapshot["done"] == snapshot["total"] == 7
    live = Transferability.result_class.live_figures(snapshot)
    assert len(live) == 2 and "Cells finished: 7 of 7" in live[0].layout.title.text
    again = run(RunSpec("transferability", "", None, TINY, device="cpu"))
    assert again.metrics["cells_trained"] == 0
    np.testing.assert_array_equal(again.arrays["acc"], resumed.arrays["acc"])
    tg.clear_caches()
    fresh = run(RunSpec("transferability", "", None, TINY, device="cpu"))
    np.testing.assert_allclose(fresh.arrays["acc"], resumed.arrays["acc"], atol=1e-6)


def test_runner_fills_dataset_from_data_only_without_model_and_when_unset():
    assert config_values(Transferability, RunSpec("transferability", "", "digits"))["dataset"] == "digits"
    assert config_values(Transferability, RunSpec("transferability", "", "digits",
                                                  {"dataset": "mnist1d"}))["dataset"] == "mnist1d"
    assert "dataset" not in config_values(Transferability, RunSpec("transferability", "a.model", "digits"))

    class NoDataset:
        @dataclasses.dataclass(frozen=True)
        class Config:
            k: int = 1

    assert config_values(NoDataset, RunSpec("x", "", "digits")) == {}
    with pytest.raises(ConfigError):
        run(RunSpec("transferability", "", "skimage", {"cuts": "2"}))
    with pytest.raises(ConfigError):
        run(RunSpec("transferability", "", "digits", {"cuts": "9"}))


def test_a_given_model_is_refused(toy_card):
    with pytest.raises(ConfigError, match="takes no --model"):
        run(RunSpec("transferability", "toy_cnn.test", None, TINY, device="cpu"))


# ---- the paper's released numbers -------------------------------------------------------------------

def test_plot_of_the_released_numbers_reproduces_the_papers_ordering():
    zeros = np.zeros((1, 5, 2))
    fig = accuracy_figure([1, 2], zeros, zeros, np.array([0.5]), "ours")
    paper = {t.name: np.array(t.y) for t in fig.data if t.xaxis == "x2" and t.mode == "lines+markers"}
    bnb, bnbp = paper["BnB (selffer, frozen)"], paper["BnB+ (selffer, fine-tuned)"]
    anb, anbp = paper["AnB (transfer, frozen)"], paper["AnB+ (transfer, fine-tuned)"]
    assert len(anb) == 7
    assert (anbp > PAPER_BASE).all()  # the lingering generalization boost at every n
    assert (anbp - PAPER_BASE).mean() == pytest.approx(0.017, abs=0.001)
    assert (anbp[4:] - PAPER_BASE).mean() == pytest.approx(0.021, abs=0.001)
    assert np.argmin(bnb) + 1 in (4, 5) and bnb[5] > bnb[4] and bnb[6] > bnb[4]  # dip at 4-5, recovery
    assert anb[-1] == min(bnb.min(), bnbp.min(), anb.min(), anbp.min())  # specificity at n = 7
    assert anb[6] < anb[3] < anb[0] and np.abs(bnbp - PAPER_BASE).max() < 0.01


# ---- the full analyzer at small scale on mnist1d -------------------------------------------------

@pytest.fixture(scope="module")
def mnist1d_result():
    return run(RunSpec("transferability", "", "mnist1d", SMALL, device="cpu"))  # --data fills the dataset


def test_small_scale_targets_hold_on_mnist1d(mnist1d_result):
    r = mnist1d_result
    assert r.data == "mnist1d" and r.config["dataset"] == "mnist1d" and r.model == ""
    checks = {c.name: c for c in r.checks}
    for name in ("frozen_layers_unchanged", "anb_falls_after_n2", "anb_plus_at_least_base", "random_below_transfer",
                 "cka_falls_with_depth", "leep_nonpositive", "scores_rank_same_domain_above_random", "finite_values"):
        assert checks[name].passed, checks[name]
    m = r.metrics
    for k in (2, 4):
        for t in TREATMENTS:
            assert f"{t}_acc_n{k}" in m
    assert {"base_b_acc", "cka_layer1", "cka_last"} <= set(m)
    assert m["base_b_acc"] > 0.85 and m["cka_layer1"] > 0.8 > m["cka_last"]
    assert m["anb_acc_n4"] < m["anb_plus_acc_n4"] - 0.05  # specificity: frozen A features lose, fine-tuning recovers
    assert m["random_frozen_acc_n4"] < m["anb_acc_n4"]


def test_every_figure_is_drawn(mnist1d_result):
    back = mnist1d_result
    figs = back.figures()
    kinds = {t.type for f in figs for t in f.data}
    assert len(figs) == 7 and {"heatmap", "table", "scattergl", "scatter"} <= kinds
    n_probe = len(back.arrays["umap_labels"])
    assert 250 <= n_probe <= 300
    assert back.arrays["umap_base"].shape == back.arrays["umap_transfer"].shape == (n_probe, 2)
    assert "co-adaptation" in back.summary()


# ---- the page ---------------------------------------------------------------------------------------

def test_page_runs_a_small_grid_and_draws_the_result():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/transferability.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="transferability.dataset").set_value("digits")
    at.multiselect(key="transferability.cuts").set_value(["2"])
    at.number_input(key="transferability.seeds").set_value(1)
    at.number_input(key="transferability.epochs").set_value(2)
    at.checkbox(key="transferability.umap").set_value(False)
    at.run()
    next(b for b in at.button if b.label == "Run the transfer grid").click().run()
    deadline = time.time() + 120

    def titles() -> str:
        return " ".join(c.proto.spec for c in at.get("plotly_chart"))

    while "Linear CKA between layers" not in titles() and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    shown = titles()
    for title in ("Linear CKA between layers", "Yosinski et al. 2014, released logs", "Grid of cells",
                  "Transferability scores of candidate sources", "Relative accuracy"):
        assert title in shown, title
    assert not at.exception and not at.error


def test_a_failing_accuracy_comparison_says_what_to_do_and_carries_the_fix():
    from analyzers.transferability.checks import _next_steps
    from workbench.core.result import Check

    spec = tg.GridSpec("mnist1d", 3000, (0, 1, 2, 3, 4), (5, 6, 7, 8, 9), (2, 4), (0,), 8, 3e-3, 128)
    checks = [Check("random_below_transfer", False, 0.0, 0.0, "m"), Check("anb_falls_after_n2", True, 0.0, 0.0, "m"),
              Check("frozen_layers_unchanged", False, 1, 0, "m")]
    _next_steps(spec, checks)
    assert checks[0].fix == {"seeds": 2, "epochs": 10, "num_samples": 5000} and "1 seed(s)" in checks[0].next_step
    assert not checks[1].next_step and not checks[2].fix  # passing, or not a matter of noise
    assert Transferability.presets["paper"]["config"]["cuts"] == "1,2,3,4"
    assert Transferability.work_units({"cuts": "1,2,3,4", "seeds": 2, "epochs": 10, "num_samples": 5000}) == \
        Transferability.work_units({"cuts": "2,4", "seeds": 1, "epochs": 8, "num_samples": 3000}) * 44 * 10 * 5000 / (
            12 * 8 * 3000)
