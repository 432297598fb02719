"""EEG saliency on ICLabel (iclabel.mne) over the real Emotiv recording's ICA components (emotiv.ica): the CLI run,
the sheet's parts, the checks that exist without ground truth (LRP conservation, IG completeness, randomization),
the refusal of other image2d models, the head-map orientation and the page's model picker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mne_icalabel")
torch = pytest.importorskip("torch")

from analyzers.eeg_saliency import iclabel_sheet as ics  # noqa: E402
from analyzers.eeg_saliency.iclabel_run import FeatureForward  # noqa: E402
from workbench.core.cards import get_card  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "workbench.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _card(card_id: str):
    card = get_card(card_id)
    if not card.status(card).get("available"):
        pytest.skip(f"{card_id} weights are not available")
    return card


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One CLI run on every component, explaining the raw logit (the model doc's conservation band is the logit's),
    with the quality panel."""
    _card("iclabel.mne")
    out = tmp_path_factory.mktemp("iclabel")
    proc = subprocess.run([*CLI, "run", "eeg_saliency", "--model", "iclabel.mne", "--data", "emotiv.ica",
                           "--set", "explain=logit", "--set", "random_draws=1", "--set", "quality=true",
                           "--out", str(out)],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def result(run_dir):
    from workbench.core.result import Result

    return Result.load(run_dir)


@pytest.fixture(scope="module")
def model_and_sheets():
    from workbench.data.emotiv import ica_features

    card = _card("iclabel.mne")
    return card.loader(card), torch.as_tensor(ica_features()["sheets"])


def test_the_cli_run_shows_iclabels_prediction_with_class_names_beside_mne_icalabels(run_dir, result):
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["model"] == "iclabel.mne" and (run_dir / "report.html").stat().st_size > 0
    info = result.info
    assert info["layout"] == "iclabel_sheet" and len(info["iclabel_labels"]) == 13
    assert set(info["iclabel_labels"]) <= set(info["class_names"]) and "eye blink" in info["iclabel_labels"]
    assert info["mne_icalabel_labels"] == info["iclabel_labels"]  # the wrapper agrees on the Emotiv components
    assert info["iclabel_labels"][info["window"]] == "eye blink"  # the default view: the eye-blink component
    assert info["n_real_bins"] == 64  # 128 Hz recording: bins above 64 Hz are mne-icalabel's padding
    figs = result.figures()
    table = figs[0].data[0]
    assert "mne-icalabel" in table.header.values and "eye blink" in table.cells.values[1]
    assert len(figs) >= 9 and "no ground truth" in result.summary()  # 8 of its own, then the quality panel's
    quality = {c.name: c for c in result.checks if c.name.startswith("quality_beats_random_")}
    assert set(quality) == {"quality_beats_random_lrp", "quality_beats_random_ig"}
    assert quality["quality_beats_random_ig"].passed  # IG's deletion/insertion beat a random map on these components


def test_split_reads_the_rows_the_network_reads():
    """The parts are taken from the rows ICLabel reads: a planted row swap (spectrum <-> autocorrelation) fails."""
    r = np.zeros((1, 34, 100))
    r[0, 32], r[0, 33] = np.arange(100), -np.arange(100)
    r[0, :32, :32], r[0, :32, 32:64] = 1.0, 2.0
    s = ics.split(r)
    np.testing.assert_array_equal(s["psd"][0], np.arange(100))
    np.testing.assert_array_equal(s["ac"][0], -np.arange(100))
    np.testing.assert_array_equal(s["topo"][0], np.full((32, 32), 3.0))  # both copies of a pixel
    np.testing.assert_allclose(s["parts"].sum(1), s["total"])


def test_the_parts_add_up_to_the_whole_map(result):
    a = result.arrays
    for m in ("lrp", "ig"):
        whole = a[f"ic_map_{m}"].astype(np.float64).sum((1, 2))
        np.testing.assert_allclose(a[f"ic_parts_{m}"].sum(1), whole, rtol=1e-6, atol=1e-6)
        parts = np.stack([a[f"ic_topo_{m}"].astype(np.float64).sum((1, 2)), a[f"ic_psd_{m}"].sum(1),
                          a[f"ic_ac_{m}"].sum(1)], 1)
        np.testing.assert_allclose(parts, a[f"ic_parts_{m}"], rtol=1e-4, atol=1e-4)
    assert next(c for c in result.checks if c.name == "sheet_parts_complete").passed


def test_feature_vectors_pack_back_into_the_sheet(model_and_sheets):
    """The quality panel's feature form (head pixels, spectrum, lags) gives ICLabel the same sheet back."""
    model, x = model_and_sheets
    head = ics.head_mask(x.numpy()[:, 0])
    f = torch.as_tensor(ics.input_features(x.numpy(), head), dtype=torch.float32)[:, None]
    with torch.no_grad():
        torch.testing.assert_close(FeatureForward(model, head)(f), model(x), rtol=1e-5, atol=1e-5)


def test_lrp_keeps_the_share_of_the_logit_the_model_doc_states(result):
    """models/eeg_iclabel.py: the input receives 0.84-0.93 of the logit with EpsilonPlusFlat on these components."""
    m = result.metrics
    assert 0.835 <= m["lrp_conservation_min"] and m["lrp_conservation_max"] <= 0.935, m
    share = result.arrays["ic_share_lrp"]
    np.testing.assert_allclose(share, result.arrays["ic_total_lrp"] / result.arrays["ic_value_lrp"], rtol=1e-4)
    assert next(c for c in result.checks if c.name == "lrp_share_conserved").passed


def test_ig_is_complete_against_the_model_itself(result, model_and_sheets):
    """sum(IG) = f(x) - f(0) for the explained logit, recomputed here from the model (|input| is no IG)."""
    model, x = model_and_sheets
    pred = torch.as_tensor(np.array(result.arrays["pred"]))
    with torch.no_grad():
        diff = (model(x) - model(torch.zeros_like(x))).gather(1, pred[:, None])[:, 0].double().numpy()
    total = result.arrays["ic_map_ig"].astype(np.float64).sum((1, 2))
    gap = np.abs(total - diff) / np.abs(diff)
    assert np.median(gap) <= ics.IG_GAP_MAX and gap.max() < 0.1, gap


def test_the_randomization_control_breaks_when_nothing_is_randomized(model_and_sheets):
    """LRP's map of a fully re-drawn ICLabel shares little order with the trained one's; the same control with no
    layer re-drawn (a control that must fail) gives correlation 1 and fails its check."""
    from types import SimpleNamespace

    from analyzers.eeg_saliency.truth import rank_randomization

    model, x = model_and_sheets
    x = x[6:9]
    with torch.no_grad():
        target = model(x).argmax(1)
    ctx = SimpleNamespace(seed=0, progress=lambda *a, **k: None)
    head = ics.head_mask(x.numpy()[:, 0])
    rhos = {}
    for layers in (-1, 0):
        cfg = SimpleNamespace(explain="logit", ig_steps=8, random_draws=1, randomize_layers=layers)
        w = ics.SheetRun(model, x, target, cfg, ctx)
        maps = {"lrp": ics.features(ics.maps_for(model, x, target, ["lrp"], cfg)["lrp"].numpy(), head)}
        out = rank_randomization(w, maps, ics.random_mapper(w, head))
        rhos[layers] = (out.metrics["lrp_randomization_rank_corr"], out.checks[0].passed)
    assert rhos[-1][1] and rhos[-1][0] < 0.5, rhos
    assert not rhos[0][1] and rhos[0][0] > 0.99, rhos


def test_padding_bins_are_found_from_the_constant_tail():
    s = np.random.default_rng(0).normal(size=(3, 34, 100))
    s[:, 32, 40:] = s[:, 32, 39:40]  # mne-icalabel repeats the last bin below Nyquist
    assert ics.real_bins(s) == 40
    assert ics.real_bins(np.random.default_rng(1).normal(size=(2, 34, 100))) == 100


def test_the_head_map_is_nose_up_with_the_right_ear_on_the_right():
    """mne-icalabel's own topoplot of a right-frontal electrode (AF4) lights the sheet's front rows and right
    columns, which the figures draw at the top right; a left-posterior one (O1) the back rows, left columns."""
    from mne_icalabel.iclabel.features import _topoplotFast

    # EEGLAB polar positions (degrees from the nose, + to the right ear) of the 14 Emotiv channels' neighbours
    th = np.array([17.3, -158.6, 90.0, -90.0, 0.0])
    rd = np.array([0.35, 0.32, 0.4, 0.4, 0.1])
    for k, (rows, cols) in ((0, ("front", "right")), (1, ("back", "left"))):
        v = np.zeros(len(th))
        v[k] = 1.0
        topo = np.nan_to_num(_topoplotFast(v, rd.copy(), np.pi / 180 * th))
        r, c = np.unravel_index(np.argmax(topo), topo.shape)
        assert (r > 16) == (rows == "front") and (c > 16) == (cols == "right"), (r, c)
        shares = ics.region_shares(topo[None])[0]
        assert np.argmax(shares) == (0 if rows == "front" else 2), shares


def test_other_image2d_models_are_refused_in_one_line():
    from analyzers.eeg_saliency.analyzer import EegSaliency
    from workbench.core.errors import UnsupportedModelError
    from workbench.runtime import RunSpec
    from workbench.runtime.runner import run

    digits, ic = get_card("digits_vgg.sk"), get_card("iclabel.mne")
    assert EegSaliency.accepts(ic) and not EegSaliency.accepts(digits)
    assert not ics.is_sheet(type("C", (), {"kind": "image2d", "extra": {}, "input_shape": (1, 34, 100)})())
    with pytest.raises(UnsupportedModelError) as e:
        run(RunSpec("eeg_saliency", "digits_vgg.sk", "digits:test:2", {}))
    assert "\n" not in str(e.value) and "digits_vgg.sk" in str(e.value)
    proc = subprocess.run([*CLI, "run", "eeg_saliency", "--model", "digits_vgg.sk", "--out", "/tmp/never-written"],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_page_offers_iclabel_with_a_component_picker():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "workbench" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("../pages/eeg_saliency.py")
    at.run()
    model = next(s for s in at.selectbox if s.label == "Model")
    assert "iclabel.mne" in model.options
    model.set_value("iclabel.mne").run()
    assert not at.exception
    comp = next(s for s in at.selectbox if s.label == "Component shown in detail")
    assert any("eye blink" in o for o in comp.options)
    methods = next(m for m in at.multiselect if m.label == "Methods")
    assert "cam" not in methods.options and set(methods.value) == {"lrp", "ig"}
