"""eeg_saliency tests that can fail: the paper's planted-truth targets at small scale, the randomization
control (and a control that must break it), the BatchNorm trap, literal float64 references for the CAM
variant, IG and LRP, leave-one-subject-out accuracy, user recordings, the CLI and the page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from analyzers.eeg_saliency import maps as em
from workbench.core.errors import Cancelled, ConfigError, UnsupportedModelError
from workbench.core.hooks import count_hooks
from workbench.data import get_samples
from workbench.runtime import RunContext, RunSpec, load_model, run

MODEL = "eeg_compact.synth"
ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.zoo(MODEL)
CLI_METRICS = ("saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game", "randomized_mass_in_bursts")


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def full():
    return run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy", {}, device="cpu"))


def _check(r, name):
    return next(c for c in r.checks if c.name == name)


def test_planted_truth_targets_of_the_paper(full):
    m = full.metrics
    assert m["n_evaluated"] >= 30
    assert 0.3 < m["chance_mass_in_bursts"] < 0.5 and abs(m["chance_posterior_share"] - 8 / 30) < 1e-9
    assert m["saliency_mass_in_bursts"] >= 0.8
    assert m["saliency_posterior_share"] >= 0.9
    assert m["pointing_game"] >= 0.9
    for name in ("saliency_mass_in_bursts", "saliency_posterior_share", "pointing_game",
                 "randomization_falls_to_chance", "batch_independent_predictions", "alpha_band_dominates",
                 "finite_values"):
        assert _check(full, name).passed, name
    assert set(CLI_METRICS) <= set(m)


def test_randomized_model_and_other_class_fall_to_chance(full):
    m = full.metrics
    assert m["randomized_mass_in_bursts"] <= m["chance_mass_in_bursts"] + 0.2
    assert m["saliency_mass_in_bursts"] - m["randomized_mass_in_bursts"] >= 0.25
    assert m["other_class_mass_in_bursts"] <= m["chance_mass_in_bursts"] + 0.2
    assert m["randomized_posterior_share"] < 0.6 < m["saliency_posterior_share"]


def test_control_that_must_break_the_randomization_check():
    """Re-initializing no layer leaves the trained model: its map stays on the bursts and the check fails."""
    r = run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy",
                    {"methods": "cam", "randomize_layers": "0", "random_draws": "1"}, device="cpu"))
    assert abs(r.metrics["randomized_mass_in_bursts"] - r.metrics["saliency_mass_in_bursts"]) < 1e-6
    assert not _check(r, "randomization_falls_to_chance").passed


def test_frequency_view_finds_alpha(full):
    m, a = full.metrics, full.arrays
    assert m["band_relevance_alpha"] > max(m["band_relevance_delta"], m["band_relevance_theta"],
                                           m["band_relevance_beta"])
    assert m["filter_alpha_share"] > 0.5
    assert a["filter_gain"].shape[0] == 32 and a["filter_freqs"].max() == 64.0
    # band parts add up to the whole IG attribution (an exact decomposition)
    assert a["band_relevance"].shape == (96, 5)
    assert m["ig_completeness_gap"] < 0.05


def test_batchnorm_trap_is_measured_and_fails_the_check_in_paper_mode(full):
    assert full.metrics["bn_frozen_max_prob_shift"] < 1e-5
    assert full.metrics["bn_trap_max_prob_shift"] > 0.05  # batch statistics: alone != in the batch
    alone = full.arrays["bn_alone_prob"]
    assert np.ptp(alone) < 1e-4  # per-window statistics + average pooling = one constant output for all
    assert "BatchNorm trap" in full.summary()
    paper = run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy:subject:10",
                        {"methods": "cam", "bn_mode": "batch", "random_draws": "1"}, device="cpu"))
    assert not _check(paper, "batch_independent_predictions").passed
    assert paper.metrics["saliency_mass_in_bursts"] >= 0.8  # the map itself still finds the bursts


def test_cam_variant_equals_a_literal_float64_loop():
    handle = load_model(MODEL, "cpu")
    m = handle.module
    x = torch.from_numpy(np.stack([handle.card.preprocess(s) for s in get_samples("eeg_synth.drowsy:458,461")]))
    sc, sh = em.bn_affine(m, x, "frozen")
    z, a, logits = em.forward_parts(m, x, sc, sh)
    fast = em.cam_heatmap(m, x, z, a, logits.argmax(1)).numpy()
    xd, zd, ad = x.double().numpy(), z.double().numpy(), a.double().numpy()
    wfc, wdw = m.fc.weight.detach().double().numpy(), m.depthwise.weight.detach().double().numpy()[:, 0]
    wpw = m.pointwise.weight.detach().double().numpy()[:, :, 0]
    for n in range(2):
        c = int(logits[n].argmax())
        cam = wfc[c][:, None] * ad[n]
        ref = np.zeros((30, 384))
        for flat in np.argsort(-cam.ravel())[:100]:
            i, t = divmod(int(flat), cam.shape[1])
            if np.sign(zd[n, i, t]) != np.sign(ad[n, i, t]):
                continue
            s = [wpw[i // 2, ch] * sum(wdw[i, k] * xd[n, ch, t + k] for k in range(64)) for ch in range(30)]
            p, q = int(np.argmax(np.array(s) * np.sign(zd[n, i, t]))), t + 32
            for tt in range(max(0, q - 31), min(384, q + 32)):
                ref[p, tt] += np.exp(-0.5 * ((tt - q) / 32) ** 2) / (32 * np.sqrt(2 * np.pi))
        assert np.abs(ref - fast[n]).max() < 1e-5 * ref.max()


def test_integrated_gradients_converge_to_the_closed_form():
    """For this network the path integral is exact: Z(a x) = a L(x) + b, so the ReLU gate of each (map, time)
    is open for a known fraction of the path. captum's IG must converge to it (float64 reference)."""
    handle = load_model(MODEL, "cpu")
    m = handle.module
    x = torch.from_numpy(np.stack([handle.card.preprocess(s) for s in get_samples("eeg_synth.drowsy:458")]))
    sc, sh = em.bn_affine(m, x, "frozen")
    canon = em.canonical_model(m, sc, sh)
    c = int(canon(x).argmax())
    cd = canon.double()
    xd = x.double().clone().requires_grad_(True)
    b = cd[2](cd[1](cd[0](torch.zeros_like(xd)))).detach()
    lin = cd[2](cd[1](cd[0](xd))) - b
    ld = lin.detach()
    frac = torch.where(ld > 0, 1 - torch.clamp(-b / ld, 0, 1),
                       torch.where(ld < 0, torch.clamp(-b / ld, 0, 1), (b > 0).double()))
    (lin * cd[6].weight[c][None, :, None] / ld.shape[2] * frac).sum().backward()
    exact = (xd * xd.grad).detach()
    canon = em.canonical_model(m, sc, sh)
    errs = [float(((x * em.ig_gradients(canon, x, torch.tensor([c]), s)).double() - exact).norm() / exact.norm())
            for s in (8, 64)]
    assert errs[1] < 5e-3 and errs[1] < errs[0]


def test_lrp_conserves_relevance_when_biases_are_zero():
    handle = load_model(MODEL, "cpu")
    x = torch.from_numpy(np.stack([handle.card.preprocess(s) for s in get_samples("eeg_synth.drowsy:458,459")]))
    sc, sh = em.bn_affine(handle.module, x, "frozen")
    canon = em.canonical_model(handle.module, sc, sh)
    with torch.no_grad():
        assert torch.allclose(canon(x), handle.module(x), atol=1e-5)  # BN folded exactly into fc
        for layer in (canon[0], canon[2], canon[6]):
            layer.bias.zero_()
        out = canon(x)
    target = out.argmax(1)
    rel = em.lrp_maps(canon, x, target, 1e-9)
    assert torch.allclose(rel.sum((1, 2)), out.gather(1, target[:, None])[:, 0], rtol=1e-3)
    assert count_hooks(canon) == 0


def test_leave_one_subject_out_at_small_scale_with_progress():
    """Issue target: LOSO mean >= 0.85 on the synthetic set. Small scale: 3 of the 11 folds (subject 1 is the
    hardest), 3 epochs at lr 1e-2; the full protocol with the paper's recipe runs in the benchmark."""
    seen = []
    ctx = RunContext(on_progress=lambda f, msg: seen.append(msg))
    r = run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy",
                    {"methods": "cam", "random_draws": "1", "loso": "true", "loso_folds": "3", "loso_epochs": "3",
                     "loso_lr": "0.01"}, device="cpu"), ctx)
    assert r.arrays["loso_subjects"].tolist() == [1, 2, 3]
    assert r.metrics["loso_mean_acc"] >= 0.85 and _check(r, "loso_mean_accuracy").passed
    assert r.metrics["loso_std_acc"] >= 0 and any("LOSO subject 2" in m for m in seen)


def test_cancel_during_the_protocol_and_errors_leave_the_model_untouched():
    module = load_model(MODEL, "cpu").module
    before = _state(module)
    ctx = RunContext()
    ctx.on_progress = lambda f, msg: ctx.cancel.cancel() if "LOSO" in msg else None
    with pytest.raises(Cancelled):
        run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy:subject:9",
                    {"methods": "cam", "loso": "true", "random_draws": "1"}, device="cpu"), ctx)
    with pytest.raises(ConfigError):
        run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy:subject:9", {"window": "5000"}, device="cpu"))
    with pytest.raises(ConfigError):
        run(RunSpec("eeg_saliency", MODEL, "eeg_synth.drowsy", {"methods": "gradcam"}, device="cpu"))
    assert count_hooks(module) == 0 and _same(before, _state(module))
    with pytest.raises(UnsupportedModelError):
        em.check_layout(torch.nn.Sequential(torch.nn.Conv1d(30, 2, 3)))


def test_every_view_is_drawn(full):
    back = full
    titles = [f.layout.title.text for f in back.figures()]
    for word in ("over the traces", "each method", "topomaps", "Planted truth", "frequency band",
                 "temporal filters", "BatchNorm trap"):
        assert any(word in t for t in titles), word
    assert back.arrays["show_signal"].shape == (30, 384) and back.arrays["topo_xy"].shape == (30, 2)
    assert back.arrays["channel_relevance_cam"][[27, 28, 29]].sum() > 0.5  # occipital channels dominate


def test_user_recordings_run_without_truth(tmp_path):
    import mne
    import scipy.io

    s = get_samples("eeg_synth.drowsy:subject:10")
    x = np.stack([v.array for v in s[:8]])
    scipy.io.savemat(str(tmp_path / "two.mat"), {"EEGsample": x, "substate": [[v.label] for v in s[:8]],
                                                 "subindex": [[1 + i // 4] for i in range(8)]})
    r = run(RunSpec("eeg_saliency", MODEL, str(tmp_path / "two.mat"), {"methods": "cam,ig", "ig_steps": "8"},
                    device="cpu"))
    assert "accuracy" in r.metrics and "saliency_mass_in_bursts" not in r.metrics and not r.info["has_truth"]
    raw = mne.io.RawArray(np.concatenate(list(x), axis=1) * 1e-6, mne.create_info(list(s[0].meta["channels"]),
                                                                                  128.0, "eeg"), verbose=False)
    mne.export.export_raw(str(tmp_path / "rec.edf"), raw, verbose=False)
    r = run(RunSpec("eeg_saliency", MODEL, str(tmp_path / "rec.edf"), {"methods": "cam"}, device="cpu"))
    assert r.arrays["show_cam"].shape == (30, 384) and r.metrics["n_windows"] == 8
    assert "No planted truth" in r.summary()
    with pytest.raises(Exception, match="labelled windows"):
        run(RunSpec("eeg_saliency", MODEL, str(tmp_path / "rec.edf"), {"methods": "cam", "loso": "true"}))


def test_cli_writes_the_issue_metrics_and_a_report(tmp_path, capsys):
    from workbench.cli import main

    code = main(["run", "eeg_saliency", "--model", MODEL, "--data", "eeg_synth.drowsy", "--set", "ig_steps=8",
                 "--out", str(tmp_path / "out"), "--quiet"])
    first = capsys.readouterr().err
    assert code == 0, first[-2000:]
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert set(CLI_METRICS) <= set(doc["metrics"])
    report = tmp_path / "out" / "report.html"
    assert report.stat().st_size > 3_000_000 and "BatchNorm trap" in report.read_text()
    (tmp_path / "broken.edf").write_bytes(b"0       " + b"x" * 300)  # a user recording that is not EDF
    code = main(["run", "eeg_saliency", "--model", MODEL, "--data", str(tmp_path / "broken.edf"), "--out",
                 str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bad_eeg_file" in err[0] and "Traceback" not in err[0]


def test_page_runs_a_job_and_shows_the_figures():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "workbench" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("../pages/eeg_saliency.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    models = next(b for b in at.selectbox if b.label == "Model")
    assert {"eeg_compact.synth", "braindecode.eegnet"} <= set(models.options)  # every EEG network, not Cui's only
    models.set_value(MODEL).run()
    at.multiselect[0].set_value(["cam"]).run()
    next(b for b in at.button if b.label == "Run EEG saliency").click().run()
    deadline = time.time() + 120
    while not at.get("plotly_chart") and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    charts = at.get("plotly_chart")
    assert len(charts) >= 4 and not at.exception
    assert '"type":"heatmap"' in charts[0].proto.spec.replace(" ", "")
    assert any("BatchNorm trap" in i.value for i in at.info)
    assert any("CAM variant localizes the planted bursts" in m.value for m in at.success)  # the verdict in words
