"""The example plug-in (examples/wb_example_plugin, installed by `make setup`) reaches the CLI through its
entry point alone, and its check can fail: wrong preprocessing is caught, the control breaks the check."""

import dataclasses
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from workbench.core.analyzer import get_analyzer
from workbench.core.errors import DataError, UnsupportedModelError
from workbench.core.result import Result
from workbench.runtime import RunSpec
from workbench.runtime.context import RunContext
from workbench.runtime.runner import load_model, make_batch, run

BIN = Path(sys.executable).parent


def test_the_plugin_is_installed_through_its_entry_point():
    eps = {ep.name: ep.value for ep in entry_points(group="workbench.analyzers")}
    assert eps.get("channel_stats") == "wb_example_plugin:ChannelStats", \
        "install it: .venv/bin/pip install -e examples/wb_example_plugin --no-deps (make setup does)"


def test_cli_lists_the_plugin_with_its_config_fields():
    out = subprocess.run([str(BIN / "workbench"), "analyzers", "--json"], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    found = {a["name"]: a for a in json.loads(out)}
    assert "channel_stats" in found
    fields = {f["name"]: f for f in found["channel_stats"]["config"]}
    assert fields["max_shift"]["min"] == 0.01 and fields["max_shift"]["type"] == "float"
    assert set(found["channel_stats"]["supports"]) == {"image2d", "signal1d", "eeg"}


@pytest.fixture(scope="module")
def digits_result():
    return run(RunSpec("channel_stats", "digits_vgg.sk", "digits:test:64"))


def test_training_like_data_matches_and_the_control_breaks_the_check(digits_result):
    checks = {c.name: c for c in digits_result.checks}
    assert checks["bn_stats_match"].passed, checks["bn_stats_match"].message
    assert checks["control_breaks_match"].passed, checks["control_breaks_match"].message
    assert digits_result.metrics["median_abs_shift"] < 0.1 < digits_result.metrics["control_median_abs_shift"]


def test_wrong_preprocessing_fails_the_check():
    """Planted defect: inputs scaled by 3 and shifted by 1 (a forgotten normalization) must fail."""
    handle = load_model("digits_vgg.sk", "cpu")
    batch = make_batch(handle.card, "digits:test:64", "cpu")
    bad = dataclasses.replace(batch, x=batch.x * 3 + 1)
    cls = get_analyzer("channel_stats")
    result = cls().run(handle, bad, cls.Config(control=False), RunContext())
    check = next(c for c in result.checks if c.name == "bn_stats_match")
    assert not check.passed and check.value > check.threshold, check.message


def test_too_few_samples_and_models_without_batchnorm_are_refused(toy_card):
    with pytest.raises(DataError, match="at least 16 inputs"):
        run(RunSpec("channel_stats", "digits_vgg.sk", "digits:0"))
    with pytest.raises(UnsupportedModelError, match="no BatchNorm"):
        run(RunSpec("channel_stats", toy_card.id, "digits:0", config={"min_samples": 1}))


def test_figures_come_from_a_loaded_result(digits_result, tmp_path):
    digits_result.save(tmp_path)
    loaded = Result.load(tmp_path)
    assert type(loaded).__name__ == "ChannelStatsResult"
    figs = loaded.figures()
    assert len(figs) == 2 and len(figs[0].data) == 2  # the data's bars beside the control's
