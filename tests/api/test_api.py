"""wb.run on in-memory modules and zoo ids, session cards kept out of the zoo, notebook rendering."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import workbench as wb
from tests.api.conftest import UserCNN, assert_unchanged, snapshot
from workbench.core.cards import list_cards
from workbench.core.module_card import state_sha256
from workbench.core.result import Check, Result
from workbench.runtime import session


def test_in_memory_module_gets_a_session_card_with_its_sha(user_cnn, digits_batch):
    x, y = digits_batch
    before = snapshot(user_cnn)
    r = wb.run("attribution", model=user_cnn, data=x[:3], labels=y[:3], classes=[f"d{i}" for i in range(10)],
               method="saliency,grad_cam", sanity_check=False)
    card = session.lookup_card(r.model)
    assert card.kind == "image2d" and card.input_shape == (1, 8, 8) and card.class_names[3] == "d3"
    assert card.layers_of_interest[0] == "features.5"  # the last conv: Grad-CAM's layer
    assert r.provenance.weights_sha256 == state_sha256(user_cnn) and len(r.provenance.weights_sha256) == 64
    assert r.data.startswith("session:") and r.arrays["attr_saliency"].shape[0] == 3
    assert r.model not in {c.id for c in list_cards()}  # never in the global zoo
    assert_unchanged(user_cnn, before)


def test_same_call_same_result_and_new_weights_new_card(user_cnn, digits_batch):
    x = digits_batch[0][:2]
    a = wb.run("lrp", model=user_cnn, data=x)
    b = wb.run("lrp", model=user_cnn, data=x.numpy())  # ndarray or tensor: the same data id
    assert a.model == b.model and a.data == b.data
    np.testing.assert_array_equal(a.arrays["relevance"], b.arrays["relevance"])
    with torch.no_grad():
        user_cnn.head[2].bias += 1.0
    c = wb.run("lrp", model=user_cnn, data=x)
    assert c.model != a.model and c.provenance.weights_sha256 != a.provenance.weights_sha256


def test_one_sample_without_batch_axis_and_normalize(user_cnn, digits_batch):
    x = digits_batch[0][0]  # (1, 8, 8)
    r = wb.run("lrp", model=user_cnn, data=x, normalize=((0.5,), (0.25,)))
    assert r.arrays["relevance"].shape[0] == 1
    card = session.lookup_card(r.model)
    from workbench.core.sample import Sample

    ready = card.preprocess(Sample("s", "image", x.numpy(), meta={"layout": "model"}))
    np.testing.assert_allclose(ready, (x.numpy() - 0.5) / 0.25, rtol=1e-6)


def test_signal_and_eeg_kinds_from_the_data():
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(4, 6, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                        nn.Linear(6, 2))
    x = torch.randn(3, 4, 64)
    sig = wb.run("lrp", model=net, data=x)
    eeg = wb.run("lrp", model=net, data=x, channel_names=["Fz", "Cz", "Pz", "Oz"], sfreq=128.0)
    assert session.lookup_card(sig.model).kind == "signal1d"
    card = session.lookup_card(eeg.model)
    assert card.kind == "eeg" and card.sampling_rate == 128.0 and card.extra["channels"][0] == "Fz"


def test_zoo_ids_and_in_memory_raw_pictures_still_work(toy_card):
    from PIL import Image

    by_id = wb.run("attribution", model="toy_cnn.test", data="digits:0", method="saliency", sanity_check=False)
    pixels = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    raw = wb.run("attribution", model="toy_cnn.test", data=pixels, method="saliency", sanity_check=False)
    pil = wb.run("attribution", model="toy_cnn.test", data=Image.fromarray((pixels * 255).astype(np.uint8)),
                 method="saliency", sanity_check=False)
    assert by_id.model == raw.model == pil.model == "toy_cnn.test"
    assert raw.data.startswith("session:") and pil.arrays["attr_saliency"].shape == (1, 16, 16)


def test_session_registry_is_bounded(digits_batch):
    from torch import nn

    x = digits_batch[0][:1]
    for i in range(20):
        torch.manual_seed(i)
        wb.run("lrp", model=nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3)), data=x)
    assert len(session.session_cards()) <= 16


def test_listings():
    assert any(a["name"] == "lrp" for a in wb.analyzers())
    assert any(m["id"] == "digits_vgg.sk" for m in wb.zoo())


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_notebook_html_shows_figures_and_escapes_user_strings(user_cnn, digits_batch, tmp_path):
    from tests.reliability.test_xss import PAYLOADS

    r = wb.run("attribution", model=user_cnn, data=digits_batch[0][:2], method="saliency,grad_cam",
               sanity_check=False)
    bundle = r._repr_mimebundle_()
    html = bundle["text/html"]
    assert html.count("Plotly.newPlot") == len(r.figures()) > 0
    assert ("all checks pass" in html) == r.passed
    tags = _Scan()
    tags.feed(html)
    assert not [a for t, a in tags.tags if t in ("script", "link", "img", "iframe") and (a.get("src") or a.get("href"))]
    assert r.title in bundle["text/plain"]
    evil = Result("attribution", model=PAYLOADS[0], data=PAYLOADS[2],
                  checks=[Check(PAYLOADS[1], False, 1.0, 0.5, PAYLOADS[5])], metrics={PAYLOADS[3]: 1.0})
    page = evil._repr_html_()
    scan = _Scan()
    scan.feed(page)
    assert [t for t, _ in scan.tags if t in ("script", "img", "svg", "a", "iframe")] == []
    assert not any(k.startswith("on") for _, a in scan.tags for k in a)
    assert "FAIL" in page and "&lt;script&gt;" in page
    out = wb.report([r, evil], tmp_path / "report.html")
    assert out.exists() and "Plotly.newPlot" in out.read_text()


def test_plotly_js_is_inlined_once_per_process(user_cnn, digits_batch):
    from workbench.core import notebook

    notebook._STATE["plotlyjs_sent"] = False
    r = wb.run("lrp", model=user_cnn, data=digits_batch[0][:1])
    first, second = r._repr_html_(), r._repr_html_()
    marker = "Copyright (c)"  # plotly.js' bundle header
    assert marker in first and marker not in second and len(first) > 1_000_000 > len(second)
    assert "typeof window.Plotly" in second  # a one-line note if the page lacks plotly.js


@pytest.mark.parametrize("bad", ["nope.none", 3.5])
def test_bad_model_argument(bad):
    from workbench.core.errors import WorkbenchError

    with pytest.raises(WorkbenchError):
        wb.run("lrp", model=bad, data=np.zeros((1, 8, 8), np.float32))


def test_user_class_is_importable_for_other_tests():
    assert UserCNN()(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
