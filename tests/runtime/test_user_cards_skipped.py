"""A stored user upload that cannot be registered is skipped with a one-line reason, never silently;
the good ones still load, and the CLI names the skipped file on stderr."""

import json

from safetensors.torch import save

from workbench import cli
from workbench.runtime.zoo import add_user_weights, load_user_cards


def test_broken_uploads_are_listed_with_their_reason(toy_card, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    good = add_user_weights("toy_cnn.test", save(toy_card.build().state_dict()), "good")
    d = tmp_path / "user_weights"
    (d / "toy_cnn.user_badjson.json").write_text("{not json")
    (d / "toy_cnn.user_nobase.json").write_text(json.dumps({"sha256": "0" * 64}))
    (d / "toy_cnn.user_gone.json").write_text(json.dumps({"base": "toy_cnn.test", "sha256": "0" * 64}))
    (d / "toy_cnn.user_unknown.json").write_text(json.dumps({"base": "nope.nothing", "sha256": "0" * 64}))
    for name in ("badjson", "nobase", "unknown"):
        (d / f"toy_cnn.user_{name}.safetensors").write_bytes(b"x")
    loaded = load_user_cards()
    assert list(loaded) == [good]
    reasons = dict(line.split(": skipped ", 1) for line in loaded.skipped)
    assert set(reasons) == {f"user weights toy_cnn.user_{n}" for n in ("badjson", "nobase", "gone", "unknown")}
    assert "not valid JSON" in reasons["user weights toy_cnn.user_badjson"]
    assert "'base'" in reasons["user weights toy_cnn.user_nobase"]
    assert "missing" in reasons["user weights toy_cnn.user_gone"]
    assert "nope.nothing" in reasons["user weights toy_cnn.user_unknown"]
    assert all("\n" not in line for line in loaded.skipped)
    assert cli.main(["zoo", "list", "--json"]) == 0
    err = capsys.readouterr().err
    assert err.count("workbench: warning: user weights") == 4 and "toy_cnn.user_gone" in err
