"""The user's own file on the command line: `workbench run ANALYZER --model FILE.py:FN [--weights W]`
and the `user.*` cards the app lists under `workbench app --models FILE.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "my_models.py"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    e.pop("WORKBENCH_USER_MODELS", None)
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=e)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    sys.path.insert(0, str(MODELS.parent))
    try:
        import my_models
    finally:
        sys.path.remove(str(MODELS.parent))
    torch.manual_seed(1)
    net = my_models.build_net()
    path = tmp_path_factory.mktemp("w") / "net.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def test_run_lrp_on_the_users_file_with_weights(weights, tmp_path):
    from workbench.io.weights import sha256_file

    p = _cli("run", "lrp", "--model", f"{MODELS}:build_net", "--weights", str(weights), "--data", "digits:test:4",
             "--device", "cpu", "--quiet", "--out", str(tmp_path / "lrp"), env={"WORKBENCH_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "lrp" / "result.json").read_text())
    assert doc["model"] == "user.build_net" and doc["provenance"]["weights_sha256"] == sha256_file(weights)
    assert any(c["name"] == "ledger_closes" and c["passed"] for c in doc["checks"])
    assert (tmp_path / "lrp" / "report.html").stat().st_size > 100_000


def test_bad_user_input_is_one_line_exit_2(tmp_path, weights):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\ndef build_net():\n    return torch.nn.Linear(3, 2)\n"
                      "build_net.input_shape = (5,)\n")
    cases = [(("--model", f"{tmp_path}/missing.py:build_net"), "no file"),
             (("--model", f"{MODELS}:nope"), "no zoo model 'user.nope'"),
             (("--model", f"{broken}:build_net"), "forward failed"),
             (("--model", "digits_vgg.sk", "--weights", str(weights)), "--weights goes with"),
             (("--model", f"{MODELS}:build_net", "--weights", str(tmp_path / "none.safetensors")), "no weights file")]
    for args, words in cases:
        p = _cli("run", "lrp", *args, "--quiet", "--out", str(tmp_path / "o"), env={"WORKBENCH_HOME": str(tmp_path)})
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and words in lines[0], (args, p.stderr)


def test_app_models_file_lists_user_cards(tmp_path):
    """`workbench app --models FILE` hands the file to the app process by environment; the page lists
    come from list_cards(), so the card shows up there."""
    code = ("from workbench.core.cards import list_cards; import json; "
            "print(json.dumps([c.id for c in list_cards() if c.id.startswith('user.')]))")
    e = {**os.environ, "WORKBENCH_USER_MODELS": str(MODELS), "WORKBENCH_HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=e)
    assert p.returncode == 0 and json.loads(p.stdout) == ["user.build_net"], p.stderr
    from workbench import cli

    args = cli.build_parser().parse_args(["app", "--models", str(MODELS)])
    saved = os.environ.get("WORKBENCH_USER_MODELS")
    try:
        os.environ.pop("WORKBENCH_USER_MODELS", None)
        cli._user_models(args)
        assert os.environ["WORKBENCH_USER_MODELS"] == str(MODELS.resolve())
    finally:
        os.environ.pop("WORKBENCH_USER_MODELS", None)
        if saved is not None:
            os.environ["WORKBENCH_USER_MODELS"] = saved
