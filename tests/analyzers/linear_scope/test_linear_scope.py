"""LinearScope tests that can fail: exact replay, A = Jacobian, zero-bias homogeneity, adjoint and
affine identities, the vote identity, the exact bias split against FullGrad's identity, matrix-free
SVD against a dense SVD, no hooks / parameter changes, a broken control, and the zoo findings."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analyzers.linear_scope.products import Products, top_singular
from analyzers.linear_scope.replay import trace
from tests.conftest import require_zoo
from workbench.core.cards import ModelCard, get_card, list_cards, register_card
from workbench.core.errors import ConfigError, UnsupportedModelError
from workbench.core.hooks import count_hooks
from workbench.core.result import Result
from workbench.runtime import RunSpec, run

F64 = torch.float64


class PlainNet(nn.Module):
    """ReLU / max-pool / eval-BN classifier with functional activations inside forward: (N, 2, 8, 8) -> (N, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.conv3 = nn.Conv2d(6, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = self.bn(self.conv2(h)).relu()
        h = torch.relu(self.conv3(h)) + h  # a skip connection
        return self.fc(torch.flatten(F.leaky_relu(h, 0.1), 1))


class GateNet(nn.Module):
    """Smooth gates and norms: GroupNorm, InstanceNorm, x * sigmoid(x), tanh, GELU, LayerNorm; (N, 1, 6, 6) -> (N, 4)
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.ln = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        h = self.gn(self.conv(x))
        h = self.inorm(torch.tanh(h * torch.sigmoid(h)))
        h = F.gelu(F.adaptive_avg_pool2d(h, 2)).flatten(1)
        return self.fc(self.ln(h))


def _seeded(cls, dtype=F64):
    torch.manual_seed(0)
    m = cls().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    return m.to(dtype)


def _x(shape, dtype=F64, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _jacobian(m, x):
    return torch.autograd.functional.jacobian(lambda z: m(z), x).reshape(m(x).numel(), x.numel())


def _state_hash(m) -> str:
    h = hashlib.sha256()
    for k, v in m.state_dict().items():
        h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


# ---- the replay itself -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls,shape", [(PlainNet, (1, 2, 8, 8)), (GateNet, (1, 1, 6, 6))])
@pytest.mark.parametrize("gate", ["ratio", "tangent"])
def test_replay_is_exact_and_affine(cls, shape, gate):
    for dtype, limit in ((F64, 1e-10), (torch.float32, 1e-4)):
        m, x = _seeded(cls, dtype), _x(shape, dtype)
        r = trace(m, x, gate=gate)
        y = m(x)
        assert float((r(x) - y).abs().max() / y.abs().max()) <= limit
        v = _x(shape, dtype, seed=2)
        c = r(torch.zeros_like(x))
        assert float(((r(2 * v) - c) - 2 * (r(v) - c)).abs().max() / (r(v) - c).abs().max()) <= limit


def test_a_equals_the_input_jacobian_for_relu_maxpool_bn_nets():
    m, x = _seeded(PlainNet), _x((1, 2, 8, 8))
    r = trace(m, x)
    p = Products(r)
    jac = _jacobian(m, x)
    rows = p.rows(torch.arange(3)).reshape(3, -1)
    cols = p.columns(torch.arange(x.numel())).reshape(x.numel(), -1).T
    assert torch.allclose(rows, jac, atol=1e-12, rtol=1e-10) and torch.allclose(cols, jac, atol=1e-12, rtol=1e-10)
    assert r.piecewise_linear and not r.fallbacks
    c, _ = p.bias_terms()
    assert torch.allclose(c, (m(x) - (jac @ x.reshape(-1))).reshape(c.shape), atol=1e-12)  # c = f(x0) - J x0


def test_ratio_gate_differs_from_the_jacobian_tangent_gate_does_not_on_smooth_nets():
    class Smooth(nn.Module):  # no norms: the tangent replay must be the Jacobian exactly
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return self.c2(torch.sigmoid(self.c1(x)) * F.silu(self.c1(x))).flatten(1)

    m, x = _seeded(Smooth), _x((1, 1, 5, 5))
    jac = _jacobian(m, x)
    rows = {g: Products(trace(m, x, gate=g)).rows(torch.arange(jac.shape[0])).reshape(jac.shape) for g in
            ("ratio", "tangent")}
    assert torch.allclose(rows["tangent"], jac, atol=1e-12)
    assert float((rows["ratio"] - jac).abs().max()) > 1e-3


def test_zero_biases_give_a_zero_bias_term():
    m, x = _seeded(PlainNet), _x((1, 2, 8, 8))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.zero_()
                mod.bias.zero_()
            elif getattr(mod, "bias", None) is not None:
                mod.bias.zero_()
    r = trace(m, x)
    c, parts = Products(r).bias_terms()
    assert float(c.abs().max()) < 1e-14 and r.n_bias == len(parts) == 0  # zero biases form no group at all
    assert float((r.linear(x) - m(x)).abs().max()) < 1e-12  # f(x0) = J x0 for a bias-free ReLU net


def test_bias_split_matches_the_fullgrad_identity_per_layer():
    """Independent oracle for a bias-only conv net: contribution of layer k = (d y / d b_k) . b_k by autograd."""
    class Biased(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.fc = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3), nn.Linear(12, 2)

        def forward(self, x):
            return self.fc(F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2).flatten(1))

    m, x = _seeded(Biased), _x((1, 1, 6, 6))
    r = trace(m, x)
    _, parts = Products(r).bias_terms()
    assert r.bias_names == ["c1", "c2", "fc"]
    for j in range(2):
        grads = torch.autograd.grad(m(x)[0, j], [m.c1.bias, m.c2.bias, m.fc.bias])
        euler = [float((g * b).sum()) for g, b in zip(grads, [m.c1.bias, m.c2.bias, m.fc.bias], strict=True)]
        assert np.allclose(parts[:, j].numpy(), euler, atol=1e-12)


def test_adjoint_identity_and_matrix_free_svd_against_dense():
    m, x = _seeded(PlainNet), _x((1, 2, 8, 8))
    p = Products(trace(m, x))
    u, v = _x((4, 3), seed=3), _x((4, 2, 8, 8), seed=4)
    lhs = (u * p.matmat(v)).sum(1)
    rhs = (p.rmatmat(u) * v).flatten(1).sum(1)
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)
    s, _, vt, _ = top_singular(p, 2, 1e-12)
    dense = torch.linalg.svdvals(_jacobian(m, x)).numpy()
    assert np.allclose(s, dense[:2], rtol=1e-9)
    jac = _jacobian(m, x).numpy()
    assert np.allclose(np.abs(vt @ jac.T @ jac @ vt.T), np.diag(s ** 2), atol=1e-8)


def test_the_real_forward_is_unchanged_and_nothing_is_left_on_the_model():
    m, x = _seeded(PlainNet, torch.float32), _x((1, 2, 8, 8), torch.float32)
    before, state = m(x).detach().clone(), _state_hash(m)
    r = trace(m, x)
    p = Products(r)
    p.rows(torch.arange(3))
    during = m(x)  # the replay is alive and its VJP graph built: the real network must not notice
    assert torch.equal(during, before) and torch.equal(m(x), before)
    assert count_hooks(m) == 0 and _state_hash(m) == state and not m.training


def test_unfrozen_control_breaks_the_affine_check(toy_card):
    ok = run(RunSpec("linear_scope", "toy_cnn.test", "digits:0", {"svd_k": 0}, device="cpu"))
    broken = run(RunSpec("linear_scope", "toy_cnn.test", "digits:0", {"svd_k": 0, "freeze": False}, device="cpu"))
    status = {c.name: c.passed for c in broken.checks}
    assert all(c.passed for c in ok.checks)
    assert status["replay_exact"] and not status["affine"]  # still f(x0), but no longer a linear interpreter
    assert broken.metrics["affine_rel_error"] > 1e3 * ok.metrics["affine_rel_error"]


# ---- through the runner -----------------------------------------------------------------------------

def test_vote_identity_and_float64_exactness_on_the_toy_card(toy_card):
    r = run(RunSpec("linear_scope", "toy_cnn.test", "digits:0", {"dtype": "float64", "top_classes": 3,
                                                                 "svd_k": 2}, device="cpu"))
    for name in ("replay_rel_error", "adjoint_rel_error", "affine_rel_error", "vote_identity_error",
                 "bias_decomposition_error", "jacobian_rel_error"):
        assert r.metrics[name] <= 1e-10, name
    assert all(c.passed for c in r.checks), [c for c in r.checks if not c.passed]
    a = r.arrays
    top = a["top"]
    assert np.allclose(a["votes"].reshape(3, -1).sum(1) + a["bias"][top], a["logits"][top], atol=1e-10)
    assert 0 <= r.metrics["bias_share_top1"] <= 1 and "top_singular_value" in r.metrics


def test_bad_pixels_are_one_line_errors(toy_card, tiny_i2i):
    for model_id, cfg in (("toy_i2i.test", {"rows": "999,0"}), ("toy_i2i.test", {"columns": "a,b"})):
        with pytest.raises(ConfigError) as e:
            run(RunSpec("linear_scope", model_id, "skimage:camera", cfg, device="cpu"))
        assert "\n" not in e.value.one_line()


def test_attribution_refuses_image2image_cards_through_the_runner(tiny_i2i):
    with pytest.raises(UnsupportedModelError) as e:
        run(RunSpec("attribution", "toy_i2i.test", "skimage:camera", {}, device="cpu"))
    assert "image2image" in e.value.one_line()


def test_image2image_rows_columns_and_result_round_trip(tiny_i2i, tmp_path):
    r = run(RunSpec("linear_scope", "toy_i2i.test", "skimage:camera",
                    {"rows": "3,4;20,30", "columns": "8,8", "svd_k": 3, "dtype": "float64"}, device="cpu"))
    a = r.arrays
    assert a["rows"].shape == (2, 1, 16, 16) and a["columns"].shape == (1, 1, 32, 32)
    assert a["output"].shape == (1, 32, 32) and r.metrics["top_singular_value"] > 0
    assert all(c.passed for c in r.checks), [c for c in r.checks if not c.passed]
    # a row is local: its energy sits near the clicked pixel mapped to the input (no copy-move in a conv net)
    assert a["row_offset"].max() < 2.0
    loaded = Result.load(r.save(tmp_path / "res"))
    assert type(loaded).__name__ == "LinearScopeResult" and loaded.metrics == r.metrics
    assert [f.to_json() for f in loaded.figures()] == [f.to_json() for f in r.figures()]


class TinySR(nn.Module):
    """(N, 1, H, W) -> (N, 1, 2H, 2W): bicubic + a ReLU residual, like sr_cnn.x2 but tiny."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bicubic") + self.shuffle(self.c2(F.relu(self.c1(x))))


def _tiny_sr():
    torch.manual_seed(0)
    return TinySR().eval()


@pytest.fixture(scope="session")
def tiny_i2i(toy_card):
    from models.image2image import square_crop

    if "toy_i2i.test" not in {c.id for c in list_cards()}:
        def pre(sample):
            return square_crop(sample.array, 16)[None]

        register_card(ModelCard(
            id="toy_i2i.test", kind="image2d", task="image2image", title="Tiny x2 SR", architecture="TinySR",
            input_shape=(1, 16, 16), build=_tiny_sr, loader=lambda card: _tiny_sr(),
            status=lambda card: {"available": True, "sha256": "0" * 64, "params": 190, "accuracy": None},
            preprocess=pre, display=lambda s: np.repeat(pre(s)[0][..., None], 3, -1), weights_source="random",
            dataset="skimage", class_names=(), default_data="skimage:camera", trained=False))
    return get_card("toy_i2i.test")


# ---- the zoo: the paper's findings at small scale ---------------------------------------------------

@pytest.mark.zoo("digits_resnet.sk")
def test_digits_resnet_cli_metrics_and_bias_share():
    r = run(RunSpec("linear_scope", "digits_resnet.sk", "digits:0", {}, device="cpu"))
    assert {"replay_rel_error", "bias_share_top1", "adjoint_rel_error", "top_singular_value"} <= set(r.metrics)
    assert all(c.passed for c in r.checks), [c for c in r.checks if not c.passed]
    assert r.metrics["replay_rel_error"] <= 1e-4 and r.metrics["jacobian_rel_error"] <= 1e-4
    assert 0.0 <= r.metrics["bias_share_top1"] <= 1.0


@pytest.mark.zoo("efficientnet_lite0.imagenet")
def test_imagenet_classifier_relies_on_bias_and_votes_on_the_object():
    """The paper's classifier findings on the zoo's one real ImageNet model (measured: bias share 0.90,
    57% of |votes| on the cat, which covers 32% of the picture)."""
    r = run(RunSpec("linear_scope", "efficientnet_lite0.imagenet", "skimage:chelsea",
                    {"svd_k": 0, "top_classes": 1}, device="cpu"))
    m = r.metrics
    assert all(c.passed for c in r.checks), [c for c in r.checks if not c.passed]
    assert m["bias_share_top1"] > 0.5
    assert m["vote_object_share"] > 1.3 * m["object_area_fraction"]


@pytest.mark.zoo("sr_cnn.x2")
def test_sr_singular_vectors_are_localized_and_oriented_unlike_random_vectors():
    r = run(RunSpec("linear_scope", "sr_cnn.x2", "skimage:camera", {"svd_k": "8"}, device="cpu"))
    m = r.metrics
    assert all(c.passed for c in r.checks), [c for c in r.checks if not c.passed]
    assert m["top_singular_value"] > 2.0  # bicubic x2 alone has gain <= 2: the net amplifies some patterns
    assert m["sv_spatial_support"] < 0.5 * m["random_spatial_support"]
    assert m["sv_spectral_support"] < 0.2 * m["random_spectral_support"]
    assert m["sv_orientation_coherence"] > m["random_orientation_coherence"] + 0.3


# ---- the page -----------------------------------------------------------------------------------------

APP = str(Path(__file__).resolve().parents[3] / "workbench" / "app.py")


def _wait_for_chart(at, deadline_s: float = 120):
    deadline = time.time() + deadline_s
    while not at.get("plotly_chart") and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    return at.get("plotly_chart")


def test_page_opens_and_runs_both_tabs():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("../pages/linear_scope.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    require_zoo("digits_resnet.sk", "sr_cnn.x2")
    at.number_input(key="linear_scope.i2i.svd_k").set_value(0).run()
    next(b for b in at.button if b.label == "Run LinearScope (image-to-image)").click().run()
    charts = _wait_for_chart(at)
    assert charts and not at.exception
    at.number_input(key="linear_scope.pixel.output.r").set_value(10).run()
    next(b for b in at.button if b.label == "Show row and column").click().run()
    deadline = time.time() + 60
    while not any("row of output (10, 64)" in c.proto.spec for c in at.get("plotly_chart")) \
            and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("row of output (10, 64)" in s for s in specs), "the pixel job did not render the clicked row"
    at.number_input(key="linear_scope.cls.svd_k").set_value(0).run()
    next(b for b in at.button if b.label == "Run LinearScope (classifier)").click().run()
    deadline = time.time() + 60
    while not any('"type":"waterfall"' in c.proto.spec.replace(" ", "") for c in at.get("plotly_chart")) \
            and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    assert any('"type":"waterfall"' in c.proto.spec.replace(" ", "") for c in at.get("plotly_chart"))
    assert not at.exception


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium missing: make browser")
@pytest.mark.zoo("sr_cnn.x2")
def test_clicking_an_output_pixel_in_a_real_browser_shows_its_row():
    """Plotly heat maps emit no click selections in Streamlit: the picker must carry its marker grid."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(120_000)
            pg.goto(url + "/linear_scope")
            pg.get_by_role("tab", name="Image-to-image").click()
            pg.get_by_role("button", name="Run LinearScope (image-to-image)").click()
            picker = pg.locator('[data-testid="stPlotlyChart"]').filter(has_text="click a pixel of the output")
            picker.first.scroll_into_view_if_needed()
            pg.wait_for_timeout(1000)
            box = picker.first.locator(".nsewdrag").first.bounding_box()
            x, y = box["x"] + 0.25 * box["width"], box["y"] + 0.3 * box["height"]
            pg.mouse.move(x - 5, y - 5)
            pg.mouse.move(x, y, steps=5)
            pg.wait_for_timeout(500)
            pg.mouse.down()
            pg.mouse.up()
            pg.wait_for_function("() => document.body.innerText.match(/row of output \\((?!64, 64)\\d+, \\d+\\)/)")
            assert pg.locator('input[aria-label="output row"]').first.input_value() != "64"
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
