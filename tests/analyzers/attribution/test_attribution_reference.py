"""Attribution reference tests that catch a wrong method: each of the analyzer's methods against a literal
float64 re-implementation (autograd for Saliency, Input x Gradient and Grad-CAM; a Riemann sum for IG; a loop
over every occlusion window), planted-patch models whose right map is known, and one run end to end.

The ``check_*`` functions raise AssertionError on a mismatch; tests/reliability/test_mutations.py calls them
with a wrong method planted in the analyzer's table (``analyzers.attribution.methods.IMPLEMENTATIONS``) and
expects them to fail. Named test_attribution_reference.py, not test_reference.py: the test folders have no
``__init__.py``, so two files of one basename would clash under pytest's default import mode.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from analyzers.attribution.analyzer import AttributionConfig
from analyzers.attribution.methods import Setup, attribute
from tests.analyzers.attribution.references import logit_grad

RTOL = 1e-9
WINDOW, STRIDE = 3, 1


class Smooth(nn.Module):
    """(N, 3, 8, 8) -> (N, 3) float64; softplus so IG's path integral is smooth and both quadratures converge."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(3, 4, 3, padding=1), nn.Softplus()
        self.conv2, self.act2 = nn.Conv2d(4, 5, 3, padding=1), nn.Softplus()
        self.pool, self.flat, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))))


def smooth_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        m = Smooth().double().eval()
        for p in m.parameters():
            p.data.normal_(0.0, 0.7)
    return m


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(8)
    return torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1, torch.tensor([2, 0])


def setup(x: torch.Tensor, t: torch.Tensor, **cfg) -> Setup:
    return Setup(x, t, torch.zeros_like(x), AttributionConfig(**cfg), WINDOW, STRIDE)


# ---- literal references -------------------------------------------------------------------------

def ref_saliency(model, x, t) -> np.ndarray:
    return logit_grad(model, x, t).abs().sum(1).numpy()


def ref_input_x_gradient(model, x, t) -> np.ndarray:
    return (x * logit_grad(model, x, t)).sum(1).numpy()


def ref_integrated_gradients(model, x, t, steps: int = 4000) -> np.ndarray:
    """(x - b) times the mean gradient at the midpoints of ``steps`` equal path segments (b = 0)."""
    total = torch.zeros_like(x)
    for k in range(steps):
        total += logit_grad(model, (k + 0.5) / steps * x, t)
    return (x * total / steps).sum(1).numpy()


def ref_occlusion(model, x, t) -> np.ndarray:
    """Every WINDOW x WINDOW patch (all channels) set to 0 in turn; each pixel gets the mean drop of the logit
    over the windows covering it, per channel (so the channel sum is C times that)."""
    with torch.no_grad():
        base = model(x).gather(1, t[:, None])[:, 0]
        n, c, h, w = x.shape
        total, count = torch.zeros(n, h, w, dtype=x.dtype), torch.zeros(h, w, dtype=x.dtype)
        for i in range(0, h - WINDOW + 1, STRIDE):
            for j in range(0, w - WINDOW + 1, STRIDE):
                xo = x.clone()
                xo[:, :, i:i + WINDOW, j:j + WINDOW] = 0.0
                drop = base - model(xo).gather(1, t[:, None])[:, 0]
                total[:, i:i + WINDOW, j:j + WINDOW] += drop[:, None, None]
                count[i:i + WINDOW, j:j + WINDOW] += 1
    return (c * total / count).numpy()


def ref_grad_cam(model, x, t, layer: nn.Module) -> np.ndarray:
    """Selvaraju et al.: ReLU(sum_c mean_hw(dy/dA_c) A_c), bilinearly upsampled to the input."""
    maps, store = [], {}
    for xi, ti in zip(x, t.tolist(), strict=True):
        h = layer.register_forward_hook(lambda m, a, o: store.update(a=o))
        try:
            y = model(xi[None])[0, ti]
        finally:
            h.remove()
        (g,) = torch.autograd.grad(y, store["a"])
        cam = torch.relu((g.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True))
        maps.append(nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear")[0, 0].detach())
    return torch.stack(maps).numpy()


def assert_close(got, want, what: str, rtol: float = RTOL) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))
    assert err <= rtol, f"{what}: max |analyzer - reference| / max |reference| = {err:.3g} > {rtol:g}"


def analyzer_map(method: str, model, x, t, layer=None, **cfg) -> np.ndarray:
    a = attribute(method, model, layer, setup(x, t, **cfg))
    # captum's Occlusion divides its float64 sums in float32 (feature_ablation.py: single_attrib.float() / weight)
    assert a.dtype == (torch.float32 if method == "occlusion" else torch.float64)
    return a.numpy()


# ---- reference checks (one per method) ----------------------------------------------------------

def check_saliency() -> None:
    model, (x, t) = smooth_net(), batch()
    assert_close(analyzer_map("saliency", model, x, t), ref_saliency(model, x, t), "saliency")


def check_input_x_gradient() -> None:
    model, (x, t) = smooth_net(), batch()
    assert_close(analyzer_map("input_x_gradient", model, x, t), ref_input_x_gradient(model, x, t), "input x grad")


def check_integrated_gradients() -> None:
    """Gauss-Legendre at 64 steps and a 4000-step midpoint sum agree far below the 1% completeness tolerance;
    the midpoint rule's own error on this smooth path is ~1e-8 of the map."""
    model, (x, t) = smooth_net(), batch()
    assert_close(analyzer_map("integrated_gradients", model, x, t, n_steps=64), ref_integrated_gradients(model, x, t),
                 "integrated gradients", rtol=1e-6)


def check_occlusion() -> None:
    model, (x, t) = smooth_net(), batch()
    assert_close(analyzer_map("occlusion", model, x, t), ref_occlusion(model, x, t), "occlusion", rtol=1e-6)


def check_grad_cam() -> None:
    model, (x, t) = smooth_net(), batch()
    assert_close(analyzer_map("grad_cam", model, x, t, layer=model.conv2), ref_grad_cam(model, x, t, model.conv2),
                 "grad-cam")


class Planted(nn.Module):
    """Only the patch rows PATCH, columns PATCH of the input reach the output: a fixed 0/1 mask, then a small
    CNN without biases (so nothing outside the patch can carry a gradient, an activation or a drop)."""

    PATCH = slice(5, 10)

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
        mask[..., self.PATCH, self.PATCH] = 1.0
        self.register_buffer("mask", mask)
        self.conv1, self.act = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Softplus()
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.fc = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        a = self.conv2(self.act(self.conv1(x * self.mask)) - np.log(2.0))  # softplus(0) - log 2 = 0 off the patch
        return self.fc(a.sum((2, 3)))


def planted_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return Planted().double().eval()


def mass_inside(a: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """(N,) share of |map| inside the box."""
    inside = np.abs(a[:, rows, cols]).reshape(len(a), -1).sum(1)
    return inside / np.maximum(np.abs(a).reshape(len(a), -1).sum(1), 1e-300)


def check_planted(method: str) -> None:
    """The planted patch holds all of the map's mass (Grad-CAM and occlusion: the patch grown by the layer's
    receptive field and by the occlusion window, as their maps are coarser by construction)."""
    model = planted_net()
    g = torch.Generator().manual_seed(3)
    x, t = torch.rand(3, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1, torch.tensor([0, 1, 0])
    a = analyzer_map(method, model, x, t, layer=model.conv2)
    grow = {"grad_cam": 2, "occlusion": WINDOW - 1}.get(method, 0)
    box = slice(Planted.PATCH.start - grow, Planted.PATCH.stop + grow)
    share = mass_inside(a, box, box)
    # occlusion: batched forwards of equal inputs differ in the last float bits, and captum ends in float32
    tol = 1e-6 if method == "occlusion" else 1e-12
    assert np.abs(a).sum() > 0 and share.min() > 1 - tol, f"{method}: mass inside the planted patch {share}"


# ---- the tests ----------------------------------------------------------------------------------

def test_saliency_is_the_absolute_gradient():
    check_saliency()


def test_input_x_gradient_is_the_input_times_the_gradient():
    check_input_x_gradient()


def test_integrated_gradients_is_the_path_integral():
    check_integrated_gradients()


def test_occlusion_equals_a_loop_over_every_window():
    check_occlusion()


def test_grad_cam_is_relu_of_gradient_weighted_activations():
    check_grad_cam()


def test_planted_patch_holds_the_mass_of_every_method():
    for m in ("saliency", "input_x_gradient", "integrated_gradients", "occlusion", "grad_cam"):
        check_planted(m)


def test_the_references_tell_the_methods_apart():
    """Each reference differs from the others' and from |input| and noise by far more than its tolerance, so a
    swapped method cannot pass by coincidence on this net and input."""
    model, (x, t) = smooth_net(), batch()
    refs = {"saliency": ref_saliency(model, x, t), "ixg": ref_input_x_gradient(model, x, t),
            "ig": ref_integrated_gradients(model, x, t, steps=200), "occ": ref_occlusion(model, x, t),
            "cam": ref_grad_cam(model, x, t, model.conv2), "abs_input": x.abs().sum(1).numpy(),
            "noise": np.random.default_rng(0).normal(size=(2, 8, 8))}
    for a in refs:
        for b in refs:
            if a < b:
                err = np.abs(refs[a] - refs[b]).max() / np.abs(refs[b]).max()
                assert err > 1e-3, (a, b)


def test_the_analyzer_run_reports_the_reference_maps():
    """End to end through the runner (float32): every attr_<method> array is the reference map."""
    import workbench as wb

    x, t = batch()
    x32 = x.float()
    model = smooth_net()
    r = wb.run("attribution", model=model.float(), data=x32.numpy(), classes=("a", "b", "c"), target=1,
               method="integrated_gradients,saliency,input_x_gradient,grad_cam,occlusion", gradcam_layer="conv2",
               occlusion_window=WINDOW, occlusion_stride=STRIDE, sanity_check=False, device="cpu")
    ref_model, xd, td = smooth_net().float().double(), x32.double(), torch.full((2,), 1)
    want = {"saliency": ref_saliency(ref_model, xd, td), "input_x_gradient": ref_input_x_gradient(ref_model, xd, td),
            "integrated_gradients": ref_integrated_gradients(ref_model, xd, td, steps=400),
            "occlusion": ref_occlusion(ref_model, xd, td), "grad_cam": ref_grad_cam(ref_model, xd, td, ref_model.conv2)}
    for m, ref in want.items():
        assert_close(r.arrays[f"attr_{m}"], ref, f"run: {m}", rtol=1e-4)
