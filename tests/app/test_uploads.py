"""Uploads keep their names and are checked when they arrive; refusals and loader warnings are one line in
the user's words on the page (no error code, no command-line flag, no server temp name)."""

import io
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from pages._uploads import app_words, user_line
from workbench.core.eeg_layout import CHANNELS
from workbench.core.errors import ConfigError, InputTooLargeError

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page.endswith(".py"):
        at.switch_page(f"../pages/{page}")
    else:
        at._page_hash = calc_hash(page)  # a generated page: Streamlit identifies it by its URL path's hash
    at.run()
    return at


def _texts(at, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def test_a_pickle_named_safetensors_and_a_pt_file_are_refused_in_the_users_words():
    at = _page("zoo.py")
    blob = pickle.dumps({"conv.weight": np.zeros((2, 2))})
    at.file_uploader(key="zoo.upload").set_value(("my net.safetensors", blob, "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Validate and add").click().run()
    errors = _texts(at, "error")
    assert len(errors) == 1 and errors[0].startswith("my net.safetensors is not a safetensors file"), errors
    assert "bad_weights" not in errors[0] and "header is" not in errors[0] and "\n" not in errors[0]
    at.file_uploader(key="zoo.upload").set_value(("model.pt", blob, "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Validate and add").click().run()
    errors = _texts(at, "error")
    assert len(errors) == 1 and "model.pt is a PyTorch pickle checkpoint" in errors[0], errors
    assert not at.exception


def _png(side: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(side * side * 3) % 255).astype(np.uint8).reshape(side, side, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_an_uploaded_image_keeps_its_name_in_the_data_id_the_result_and_its_title():
    at = _page("attribution")
    at.selectbox(key="attribution.model").set_value("digits_vgg.sk").run()
    at.radio(key="attribution.source").set_value("upload").run()
    at.file_uploader(key="attribution.upload").set_value(("my cat.png", _png(), "image/png")).run()
    assert any("my cat.png" in c for c in _texts(at, "caption")), _texts(at, "caption")
    at.multiselect(key="attribution.method").set_value(["saliency"]).run()
    next(b for b in at.button if b.label == "Run attribution").click().run()
    deadline = time.time() + 120
    while at.session_state["result.attribution"] is None if "result.attribution" in at.session_state else True:
        assert time.time() < deadline and not at.error, _texts(at, "error")
        time.sleep(0.5)
        at.run()
    result = at.session_state["result.attribution"]
    assert result.data.startswith("upload:my_cat.png-"), result.data
    assert any("my_cat.png" in s for s in _texts(at, "subheader"))
    assert not at.exception


def _edf(path: Path, names=CHANNELS, sfreq: float = 128.0, seconds: int = 7) -> bytes:
    import mne

    data = np.random.default_rng(0).standard_normal((len(names), int(seconds * sfreq))) * 20e-6
    raw = mne.io.RawArray(data, mne.create_info(list(names), sfreq, "eeg"), verbose=False)
    mne.export.export_raw(str(path), raw, overwrite=True, verbose=False)
    return path.read_bytes()


def _eeg_upload(at: AppTest, name: str, blob: bytes) -> AppTest:
    at.radio[0].set_value("a recording").run()
    at.file_uploader(key="eeg_saliency.upload").set_value((name, blob, "application/octet-stream")).run()
    return at


def test_an_eeg_upload_is_checked_on_arrival_by_its_name_with_the_loaders_warnings_on_the_page(tmp_path):
    at = _page("eeg_saliency.py")
    if at.warning and "No EEG model" in at.warning[0].value:
        pytest.skip("the EEG zoo model is not built")
    _eeg_upload(at, "night 100Hz.edf", _edf(tmp_path / "a.edf", sfreq=100.0))
    errors = _texts(at, "error")
    assert len(errors) == 1 and "night 100Hz.edf" in errors[0] and "128 Hz" in errors[0], errors
    assert "bad_eeg_file" not in errors[0] and "/tmp" not in errors[0] and "\n" not in errors[0]
    assert next(b for b in at.button if b.label == "Run EEG saliency").disabled  # refused at upload, not at Run

    # lower-case names are matched loosely: the loader's warning is shown on the page, once per upload
    at = _page("eeg_saliency.py")
    _eeg_upload(at, "morning.edf", _edf(tmp_path / "b.edf", names=[c.lower() for c in CHANNELS], seconds=7))
    assert not at.error, _texts(at, "error")
    assert any("morning.edf" in w and "loosely" in w for w in _texts(at, "warning")), _texts(at, "warning")
    line = [c for c in _texts(at, "caption") if "windows of" in c]
    assert line and "morning.edf" in line[0] and "2 windows of 30 channels" in line[0], _texts(at, "caption")
    assert not next(b for b in at.button if b.label == "Run EEG saliency").disabled
    at.run()  # a rerun reads the cached file (no new warning) and still shows it
    assert any("loosely" in w for w in _texts(at, "warning"))
    assert not at.exception
    again = _eeg_upload(_page("eeg_saliency.py"), "morning.edf", (tmp_path / "b.edf").read_bytes())
    assert any("loosely" in w for w in _texts(again, "warning")), "a second session uploading the same file"

    # a recording named by its path on the server is checked as soon as it is typed, too
    at = _page("eeg_saliency.py")
    at.radio[0].set_value("a recording").run()
    at.radio(key="eeg_saliency.recording").set_value("path on the server").run()
    at.text_input(key="eeg_saliency.path").set_value(str(tmp_path / "a.edf")).run()
    assert [e for e in _texts(at, "error") if "a.edf" in e and "128 Hz" in e], _texts(at, "error")


def test_hints_for_the_command_line_are_said_the_apps_way_or_left_out():
    line = user_line(ConfigError("experiment=model needs a model", "give --model ID, or --set experiment=erf_growth"),
                     {})
    assert line == ("experiment=model needs a model. What to do: pick a model, or set experiment to erf_growth "
                    "in the form")
    assert user_line("bad_config: x is wrong (hint: re-run it with --force)", {}) == "x is wrong"
    assert user_line(InputTooLargeError("too big", "raise the budget with --memory-budget-mb 2048"), {}) \
        == "too big. What to do: raise the budget with the server's WORKBENCH_MEMORY_BUDGET_MB setting"
    assert app_words("run `make zoo --force`") == "ask whoever runs this server to build the model zoo"
    assert app_words("give --submissions DIR") == ""
    renamed = user_line(ConfigError("/tmp/u/3fa2.edf: 2 channels"), {"/tmp/u/3fa2.edf": "mine.edf"})
    assert renamed == "mine.edf: 2 channels"


def test_no_page_shows_a_command_line_flag_or_command():
    """Strings the pages draw (docstrings and comments aside) name no flag (--out, --force ...) and no make
    target: a person in the browser has no command line to type them into."""
    import ast
    import re

    flag = re.compile(r"(?<![\w-])--[a-z]|make zoo|`make ")
    found = []
    for path in sorted((Path(APP).parents[1] / "pages").glob("*.py")):
        if path.name == "_uploads.py":  # the patterns that translate command-line hints
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.name}: {n.value[:60]}" for n in ast.walk(tree) if isinstance(n, ast.Constant)
                  and isinstance(n.value, str) and id(n) not in docs and flag.search(n.value)]
    assert not found, found
