"""Localization metrics of eeg_saliency against a literal slow float64 oracle, and the checks that judge a map:
they fail for maps that do not localize (uniform, shifted in time, on the wrong channels) and pass for a map
planted on the bursts. No model is needed here."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analyzers.eeg_saliency import truth as tr
from analyzers.eeg_saliency.localization import dilate_time, localize, readout


def _oracle(maps, mask, posterior, dilate, how, radius):
    """Window by window, sample by sample, in float64 Python loops: the definitions as written on the page."""
    n, c, t = maps.shape
    out = np.zeros((n, 3))
    g = [np.exp(-0.5 * (k / radius) ** 2) / (radius * np.sqrt(2 * np.pi)) for k in range(-(radius - 1), radius)]
    for i in range(n):
        r = np.zeros((c, t))
        for ch in range(c):
            for s in range(t):
                v = float(maps[i, ch, s])
                if how == "smoothed":
                    v = sum(g[k + radius - 1] * float(maps[i, ch, s - k]) for k in range(-(radius - 1), radius)
                            if 0 <= s - k < t)
                r[ch, s] = abs(v) if how == "absolute" else max(v, 0.0)
        burst_t = [any(mask[i, ch, s] for ch in range(c)) for s in range(t)]
        total = sum(r[ch, s] for ch in range(c) for s in range(t))
        if total == 0:
            continue
        out[i, 0] = sum(r[ch, s] for ch in range(c) for s in range(t) if burst_t[s]) / total
        out[i, 1] = sum(r[ch, s] for ch in range(c) for s in range(t) if posterior[ch]) / total
        best, arg = -1.0, (0, 0)
        for ch in range(c):
            for s in range(t):
                if r[ch, s] > best:
                    best, arg = r[ch, s], (ch, s)
        near = any(burst_t[u] for u in range(max(0, arg[1] - dilate), min(t, arg[1] + dilate + 1)))
        out[i, 2] = float(posterior[arg[0]] and near)
    return out


def _case(seed=0, n=5, c=6, t=48):
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((n, c, t)).astype(np.float32)
    mask = np.zeros((n, c, t), bool)
    posterior = np.array([False, False, True, True, True, False])
    for i in range(n):
        a = int(rng.integers(0, t - 12))
        mask[i][posterior, a:a + int(rng.integers(4, 12))] = True
    maps[:, 2, 20] += 6.0  # a clear maximum, sometimes inside a burst
    maps[-1] = 0.0  # a map with no relevance scores 0 (not NaN)
    return maps, mask, posterior


@pytest.mark.parametrize("how", ["positive", "absolute", "smoothed"])
@pytest.mark.parametrize("dilate", [0, 3])
def test_scores_equal_a_literal_loop(how, dilate):
    maps, mask, posterior = _case()
    fast = localize(maps, mask, posterior, dilate, how, radius=4)
    slow = _oracle(maps, mask, posterior, dilate, how, 4)
    assert np.abs(fast - slow).max() < 1e-5
    assert fast[-1].tolist() == [0.0, 0.0, 0.0]
    assert 0 < slow[:, 2].sum() < len(slow) - 1  # the case has hits and misses


def test_positive_readout_ignores_counter_evidence_and_cam_maps_pass_unchanged():
    maps, mask, posterior = _case(1)
    flipped = maps.copy()
    flipped[maps < 0] *= 10  # stronger counter-evidence: the positive readout does not see it
    assert np.allclose(localize(maps, mask, posterior, 2), localize(flipped, mask, posterior, 2))
    assert not np.allclose(localize(maps, mask, posterior, 2, "absolute"),
                           localize(flipped, mask, posterior, 2, "absolute"))
    cam = np.abs(maps)
    for how in ("positive", "absolute", "smoothed"):
        assert np.array_equal(readout(cam, how, 4, signed=False), cam.astype(np.float64))


def test_dilation_is_a_literal_window():
    rng = np.random.default_rng(2)
    tm = rng.random((4, 40)) < 0.1
    for d in (0, 1, 5):
        ref = np.array([[tm[i, max(0, s - d): s + d + 1].any() for s in range(40)] for i in range(4)])
        assert np.array_equal(dilate_time(tm, d), ref)


# -- the checks: a map that does not localize must fail them, a planted one pass ---------------------------
def _truth(n=6, c=30, t=384):
    rng = np.random.default_rng(3)
    posterior = np.zeros(c, bool)
    posterior[[22, 23, 24, 25, 26, 27, 28, 29]] = True
    mask = np.zeros((n, c, t), bool)
    for i in range(n):
        a = int(rng.integers(0, 200))
        mask[i][posterior, a:a + 150] = True
    ev = np.ones(n, bool)
    return {"mask": mask, "posterior": posterior, "evaluated": ev,
            "chance_mass": float(mask.any(1).mean()), "chance_posterior": float(posterior.mean())}


def _w():
    cfg = SimpleNamespace(dilate=16, readout="positive", radius=32)
    return SimpleNamespace(config=cfg)


def _failed(findings):
    return {c.name for c in findings.checks if not c.passed}


def test_checks_pass_for_a_planted_map_and_fail_for_maps_that_do_not_localize():
    truth = _truth()
    mask = truth["mask"]
    planted = mask.astype(np.float32) * 2.0 - 0.5  # signed: positive on the bursts, negative elsewhere
    uniform = np.ones_like(planted)
    shifted = np.roll(mask, 192, axis=2).astype(np.float32) * (1 - mask)  # same channels, outside the bursts
    frontal = np.roll(mask, -22, axis=1).astype(np.float32)  # right times, wrong (frontal) channels
    maps = {"cam": np.abs(planted) * mask, "lrp": planted, "ig": uniform}
    out = tr.localization(_w(), maps, truth)
    assert _failed(out) == {"ig_mass_in_bursts", "ig_posterior_share", "ig_pointing_game"}
    assert out.metrics["lrp_mass_in_bursts"] == pytest.approx(1.0)
    assert abs(out.metrics["ig_mass_in_bursts"] - truth["chance_mass"]) < 1e-6  # uniform = chance
    for bad in (shifted, frontal):
        f = tr.localization(_w(), {"lrp": bad}, truth)
        assert "lrp_mass_in_bursts" in _failed(f) or "lrp_posterior_share" in _failed(f)
        assert "lrp_pointing_game" in _failed(f)
    assert tr.localization(_w(), {"lrp": shifted}, truth).metrics["lrp_mass_in_bursts"] == 0.0


def test_set_level_recomputes_over_the_evaluated_windows():
    from workbench.core import Check

    ev = np.array([True, False, True, True])
    arrays = {"evaluated": ev, "burst_fraction": np.array([0.5, 0.0, 0.3, 0.4], np.float32),
              "scores_lrp": np.array([[0.9, 0.5, 1], [0, 0, 0], [0.6, 0.4, 1], [0.3, 0.2, 0]], np.float32),
              "random_scores_lrp": np.array([[0.5, 0.3, 0], [0, 0, 0], [0.4, 0.3, 1], [0.3, 0.2, 0]], np.float32)}
    metrics = {"lrp_mass_in_bursts": 0.1, "lrp_randomization_drop": 0.0}
    checks = [Check("lrp_mass_in_bursts", False, 0.1, 0.8, ""), Check("lrp_randomization_drop", True, 0.0, 0.2, "")]
    tr.set_level(metrics, checks, arrays)
    assert metrics["lrp_mass_in_bursts"] == pytest.approx(0.6)
    assert metrics["lrp_randomized_mass_in_bursts"] == pytest.approx(0.4)
    assert metrics["lrp_randomization_drop"] == pytest.approx(0.2)
    assert metrics["n_evaluated"] == 3 and metrics["chance_mass_in_bursts"] == pytest.approx(0.4)
    assert checks[0].value == pytest.approx(0.6) and not checks[0].passed  # held-on-every-chunk stays
