"""kernel_spectra tests that can fail: FFT vs dense singular values, filter responses of planted kernels, the
Lipschitz bound against real Jacobians, NTK identities, ESD ground truths (Marchenko-Pastur, a planted power
law, weightwatcher), the locality experiment's ordering with its MLP control, hooks, the page and the CLI."""

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from analyzers.kernel_spectra.conv import (
    dense_conv_matrix,
    dense_singular_values,
    fft_singular_values,
    filter_response,
    top_singular_value,
)
from analyzers.kernel_spectra.esd import (
    FLAGS,
    RELIABLE_EVALS,
    UNRELIABLE,
    analyse_weight,
    esd,
    fit_power_law,
    fitted,
    flag,
)
from analyzers.kernel_spectra.ntk import grad_norms_sq, ntk_gram, ntk_matvec, ntk_top_eigs
from tests.conftest import TOY
from workbench.core.cards import register_card
from workbench.core.errors import ComputeError, ConfigError
from workbench.runtime import RunSpec, load_model, run

APP = str(Path(__file__).resolve().parents[3] / "workbench" / "app.py")
FAST = {"norm_iters": "100"}


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---- conv singular values ----------------------------------------------------------------------

@pytest.mark.parametrize("shape,size,stride,dilation,groups", [
    ((4, 3, 3, 3), (8, 8), (1, 1), (1, 1), 1),
    ((6, 3, 5, 5), (8, 8), (2, 2), (1, 1), 1),
    ((4, 2, 3, 3), (8, 6), (1, 1), (2, 2), 2),
    ((8, 1, 3, 3), (6, 6), (1, 1), (1, 1), 8),
    ((5, 3, 7, 7), (4, 4), (1, 1), (1, 1), 1),  # kernel larger than the map: taps wrap around
    ((5, 3, 5), (12,), (3,), (1,), 1),
    ((4, 2, 3), (10,), (2,), (2,), 2),
])
def test_fft_singular_values_equal_the_dense_operator(shape, size, stride, dilation, groups):
    w = np.random.default_rng(0).standard_normal(shape)
    fft = fft_singular_values(w, size, stride, dilation, groups)
    dense = np.sort(dense_singular_values(dense_conv_matrix(w, size, stride, dilation, groups)))
    assert fft["exact"]
    assert dense.size >= fft["values"].size and np.all(dense[:dense.size - fft["values"].size] < 1e-9)
    np.testing.assert_allclose(fft["values"], dense[-fft["values"].size:], atol=1e-6)
    assert abs(fft["sigma_max_map"].max() - dense[-1]) < 1e-6


def test_zero_padding_is_only_approximated_and_lanczos_is_exact():
    w = np.random.default_rng(1).standard_normal((6, 3, 3, 3))
    zero = dense_singular_values(dense_conv_matrix(w, (8, 8), circular=False, padding=(1, 1))).max()
    circ = fft_singular_values(w, (8, 8))["values"].max()
    wt = torch.tensor(w)
    power = top_singular_value(lambda x: torch.nn.functional.conv2d(x, wt, padding=1), (3, 8, 8), iters=2000,
                            tol=1e-12)
    assert abs(power - zero) < 1e-6 * zero
    assert abs(circ - zero) > 1e-3 * zero  # the FFT value is an approximation here, as labelled


def test_delta_kernel_has_a_flat_response_and_a_gaussian_a_decaying_one():
    delta = np.zeros((1, 1, 5, 5))
    delta[0, 0, 2, 2] = 1.0
    flat = filter_response(delta, 32)
    assert np.ptp(flat["power"]) < 1e-12 and np.ptp(flat["radial"]) < 1e-12
    g = np.exp(-((np.arange(7) - 3) ** 2) / 2.0)
    gauss = filter_response(np.outer(g, g)[None, None], 32)
    assert np.all(np.diff(gauss["radial"]) < 0)
    assert abs(flat["band_energy"][0] - np.pi / 36) < 0.03  # flat: the low band holds its area share
    assert gauss["band_energy"][0] > 0.6 > 5 * flat["band_energy"][0]
    # 1-D too: a delta is flat, a Gaussian decays
    assert np.ptp(filter_response(delta[:, :, 2], 16)["radial"]) < 1e-12
    assert np.all(np.diff(filter_response(g[None, None], 16)["radial"]) < 0)


# ---- ESD -------------------------------------------------------------------------------------------

def test_gaussian_matrix_gives_marchenko_pastur_and_a_large_alpha():
    rng = np.random.default_rng(0)
    ev, n, m = esd(rng.standard_normal((600, 300)))
    q, s = n / m, ev.mean()
    lo, hi = s * (1 - q ** -0.5) ** 2, s * (1 + q ** -0.5) ** 2
    assert ev.min() > 0.9 * lo and ev.max() < 1.1 * hi  # bulk inside the MP edges
    fit = fit_power_law(ev)
    assert (not fit["ok"]) or fit["alpha"] > 6


def test_planted_power_law_tail_is_recovered():
    rng = np.random.default_rng(0)
    lam = (1 - rng.random(400)) ** (-1 / 2.0)  # Pareto density ~ lambda^-3 for lambda >= 1
    q1, _ = np.linalg.qr(rng.standard_normal((500, 400)))
    q2, _ = np.linalg.qr(rng.standard_normal((400, 400)))
    fit = fit_power_law(esd((q1 * np.sqrt(lam)) @ q2.T)[0])
    assert fit["ok"] and abs(fit["alpha"] - 3.0) < 0.4
    shuffled = analyse_weight((q1 * np.sqrt(lam)) @ q2.T, min_evals=10, max_evals=10**6, rng=rng)
    assert shuffled["rand_alpha"] > fit["alpha"] + 2  # the randomized control destroys the heavy tail


@pytest.mark.zoo("digits_vgg.sk")
def test_alpha_matches_weightwatcher_on_the_same_layers():
    import logging

    import weightwatcher as ww  # pinned in requirements.txt: a missing package fails the test

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    module = load_model("digits_vgg.sk", "cpu").module
    df = ww.WeightWatcher(model=module).analyze()
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    checked = 0
    for (_, row), layer in zip(df.iterrows(), layers, strict=True):
        ours = analyse_weight(layer.weight.detach().numpy(), min_evals=10, max_evals=15000,
                              rng=np.random.default_rng(0))
        if ours["skipped"]:
            continue
        assert abs(ours["fit"]["alpha"] - row["alpha"]) < 1e-6
        assert abs(ours["metrics"]["lambda_max"] - row["lambda_max"]) < 1e-6 * row["lambda_max"]
        checked += 1
    assert checked >= 3


# ---- NTK -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    with torch.no_grad():
        net[1].running_var.uniform_(0.5, 2.0)
    return net, torch.randn(10, 1, 8, 8)


def test_ntk_gram_is_symmetric_psd_and_its_trace_is_the_sum_of_gradient_norms(small_net):
    net, x = small_net
    k = ntk_gram(net, x, output="trace", budget_mb=0)  # budget 0: one parameter tensor per block
    eig = np.linalg.eigvalsh(k)
    assert np.abs(k - k.T).max() < 1e-6 * np.abs(k).max() and eig.min() > -1e-6 * eig.max()
    ref = grad_norms_sq(net, x, output="trace")
    np.testing.assert_allclose(np.diag(k), ref, rtol=1e-5)
    # control: the same identity against another input's gradients must fail, sample by sample
    assert not np.allclose(np.diag(k), np.roll(ref, 1), rtol=1e-2)


def test_the_two_ntk_methods_agree(small_net):
    net, x = small_net
    k = ntk_gram(net, x, output="trace")
    v = np.random.default_rng(0).standard_normal(x.shape[0])
    np.testing.assert_allclose(ntk_matvec(net, x, v), k @ v, rtol=1e-4, atol=1e-4 * np.abs(k @ v).max())
    top, _ = ntk_top_eigs(net, x, 3)
    np.testing.assert_allclose(top, np.linalg.eigvalsh(k)[::-1][:3], rtol=1e-4)


# ---- the analyzer through the runner -------------------------------------------------------------

def test_toy_run_passes_its_checks_and_draws_every_group(toy_card):
    r = run(RunSpec("kernel_spectra", "toy_cnn.test", "digits:0,5",
                    {**FAST, "ntk": "true", "n": "6", "lanczos_n": "6", "lanczos_k": "3"}, device="cpu"))
    assert {c.name: c.passed for c in r.checks} == {"fft_matches_dense": True, "esd_layers_fitted": True,
                                                   "ntk_psd": True, "ntk_trace_identity": True,
                                                   "ntk_methods_agree": True, "finite_values": True}
    assert r.metrics["lipschitz_certified"] == 1.0 and r.metrics["fft_vs_dense_max_error"] < 1e-6
    back = r
    groups = back.figure_groups()
    assert set(groups) == {"Singular values", "Frequency responses", "ESD", "NTK"}
    assert back.sv_map_figure([1]) is not None and back.esd_figure([0]) is not None
    assert len(back.figures()) == sum(len(v) for v in groups.values()) >= 8


def test_a_wrong_input_shape_and_bad_configs_are_typed_errors(toy_card):
    broken = dataclasses.replace(TOY, id="toy_cnn.wrongshape", input_shape=(3, 16, 16))
    register_card(broken, replace=True)
    with pytest.raises(ComputeError):
        run(RunSpec("kernel_spectra", "toy_cnn.wrongshape", "digits:0", FAST, device="cpu"))
    with pytest.raises(ConfigError):
        run(RunSpec("kernel_spectra", "", None, {"experiment": "locality", "depths": "x"}))
    with pytest.raises(ConfigError):
        run(RunSpec("kernel_spectra", "", None, {}))  # the model analyses need a model


def test_lipschitz_bound_holds_for_input_jacobians_with_and_without_skips():
    from analyzers.kernel_spectra.layers import discover, lipschitz_bound

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)
            self.relu, self.pool, self.fc = nn.ReLU(), nn.MaxPool2d(2), nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            return self.fc(self.pool(self.relu(self.bn(self.conv1(x))) + x).flatten(1))

    torch.manual_seed(0)
    for net in (Res().eval(), nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                                            nn.Flatten(), nn.Linear(3 * 16, 3)).eval()):
        disc = discover(net, (2, 8, 8))
        sigma, folds = {}, {}
        for li in disc.layers:
            w = li.module.weight.detach().double()
            scale = None
            if li.bn:
                bn = dict(net.named_modules())[li.bn]
                scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
                w, folds[li.name] = w * scale.view(-1, 1, 1, 1), li.bn
            if li.kind == "linear":
                sigma[li.name] = float(torch.linalg.matrix_norm(w, 2))
            else:
                sigma[li.name] = top_singular_value(lambda x, w=w, m=li.module: torch.nn.functional.conv2d(
                    x, w, padding=m.padding), (w.shape[1], *li.input_size), iters=3000, tol=1e-12)
        bound, certified, _ = lipschitz_bound(net, sigma, folds, disc.shapes)
        assert certified
        for x in torch.randn(8, 1, 2, 8, 8):
            jac = torch.autograd.functional.jacobian(net, x).reshape(3, -1)
            assert float(torch.linalg.matrix_norm(jac, 2)) <= bound * (1 + 1e-6)


def test_signal_card_frequencies_in_hz_follow_the_sampling_rate(toy_card):
    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(2, 4, 7, padding=3), nn.Conv1d(4, 4, 5, stride=2, padding=2)
            self.c3, self.fc = nn.Conv1d(4, 4, 3, padding=1), nn.Linear(4 * 32, 2)

        def forward(self, x):
            return self.fc(self.c3(self.c2(self.c1(x))).flatten(1))

    card = dataclasses.replace(TOY, id="toy_sig.test", kind="eeg", input_shape=(2, 64), sampling_rate=128.0,
                               build=Sig, loader=lambda c: Sig().eval(), default_data="mnist1d:0",
                               preprocess=lambda s: np.resize(s.array, (2, 64)).astype(np.float32),
                               display=lambda s: np.resize(s.array, (2, 64)).astype(np.float32))
    register_card(card, replace=True)
    r = run(RunSpec("kernel_spectra", "toy_sig.test", None, FAST, device="cpu"))
    np.testing.assert_allclose(r.arrays["layer_fs"], [128.0, 128.0, 64.0])
    assert r.arrays["svmap_1"].shape == (32,) and r.metrics["fft_vs_dense_max_error"] < 1e-6
    fig = next(f for f in r.figure_groups()["Frequency responses"] if "Hz" in str(f.layout.xaxis.title.text))
    assert any("alpha" in str(a.text) for a in fig.layout.annotations)


# ---- locality (the seed paper's claims) -----------------------------------------------------------

def test_locality_experiment_ordering_and_its_mlp_control():
    r = run(RunSpec("kernel_spectra", "", None, {"experiment": "locality", "width": "48", "n_max": "256",
                                                 "n_test": "128", "reps": "3"}, device="cpu"))
    sl, sg = r.arrays["slope_local"], r.arrays["slope_global"]  # depths 2, 3, 4: d = 4, 8, 16
    assert np.all(sl[1:] < sg[1:] - 0.3)  # (i) for d >= 8 the one-patch target learns clearly faster
    assert abs(sl[-1] - sl[-2]) < 0.3  # (ii) its slope barely moves as depth and d grow ...
    assert abs(sl[-1] - sl[0]) < 0.5 * (sg[-1] - sg[0])  # ... far less than the global target's
    assert np.all(np.diff(sg) > 0) and sg[-1] - sg[0] > 0.3  # (iii) the global slope flattens with d
    gap_mlp = r.metrics["slope_global_mlp"] - r.metrics["slope_local_mlp"]
    assert gap_mlp < 0.5 * (sg[-1] - sl[-1])  # control: without locality the advantage collapses
    assert r.passed and {"slope_local", "slope_global"} <= set(r.metrics)
    assert len(r.figures()) == 3 and r.arrays["arch_eigs"].shape == (5, 384)


# ---- page and command line -------------------------------------------------------------------------

def test_a_fit_from_few_eigenvalues_is_flagged_unreliable_not_ok():
    rng = np.random.default_rng(0)
    lam = (1 - rng.random(30)) ** (-1 / 2.0)
    q1, _ = np.linalg.qr(rng.standard_normal((40, 30)))
    q2, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    few = analyse_weight((q1 * np.sqrt(lam)) @ q2.T, min_evals=10, max_evals=10**6, rng=rng)
    assert few["fit"]["ok"] and few["flag"] == UNRELIABLE and fitted(few["flag"])
    assert flag(3.0, True, True, RELIABLE_EVALS) == 0 and flag(3.0, True, True, RELIABLE_EVALS - 1) == UNRELIABLE
    assert "unreliable" in FLAGS[UNRELIABLE] and not fitted(3) and not fitted(4)


def test_page_compares_two_models_in_tabs_and_opens_the_locality_mode(toy_card):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/kernel_spectra.py")
    at.run()
    assert not at.exception and at.title[0].value == "Kernel spectra"
    at.selectbox[0].set_value("toy_cnn.test").run()
    at.checkbox[0].check().run()  # compare with a second model
    at.selectbox[1].set_value("toy_cnn.test").run()
    at.number_input(key="kernel_spectra.norm_iters").set_value(50).run()
    next(b for b in at.button if b.label == "Run kernel spectra").click().run()
    deadline = time.time() + 150
    while len([b for b in at.button if b.label == "Add to report"]) < 2 and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert not at.exception
    assert [t.label for t in at.tabs][:3] == ["Singular values", "Frequency responses", "ESD"]
    assert len([b for b in at.button if b.label == "Add to report"]) == 2  # one row per model
    assert any('"type":"heatmap"' in c.proto.spec.replace(" ", "") for c in at.get("plotly_chart"))
    at.radio[0].set_value("Locality experiment").run()
    assert not at.exception and any(b.label == "Run locality experiment" for b in at.button)


@pytest.mark.zoo("digits_vgg.sk")
def test_cli_writes_the_issue_metrics(tmp_path):
    import json

    from workbench.cli import main

    assert main(["run", "kernel_spectra", "--model", "digits_vgg.sk", "--set", "norm_iters=100", "--quiet",
                 "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "result.json").read_text())
    assert {"lipschitz_bound", "mean_alpha", "fft_vs_dense_max_error"} <= set(doc["metrics"])
    assert doc["metrics"]["fft_vs_dense_max_error"] < 1e-6
    assert (tmp_path / "report.html").stat().st_size > 3_000_000
