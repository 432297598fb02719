"""Plan item 4: crafted checkpoints are refused in a normal and an unsafe environment; the marker
file is never created; the app refuses to start when safe loading is disabled."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import operator
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.core.errors import WeightsError
from workbench.io.weights import load_pinned_checkpoint

ROOT = Path(__file__).resolve().parents[2]


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker: Path) -> dict:
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    inner = pickle.dumps(_Reduce(os.system, (cmd,)))
    return {
        "os_system": _Reduce(os.system, (cmd,)),
        "exec": _Reduce(exec, (code,)),
        "eval": _Reduce(eval, (code,)),
        "importlib_getattr": _Reduce(getattr, (_Reduce(importlib.import_module, ("os",)), "system")),
        "methodcaller_chain": _Reduce(operator.methodcaller("system", cmd), (_Reduce(importlib.import_module,
                                                                                        ("os",)),)),
        "nested_pickle_loads": _Reduce(pickle.loads, (inner,)),
        "numpy_object_array": np.array([_Reduce(os.system, (cmd,))], dtype=object),
        "subprocess_popen": _Reduce(subprocess.Popen, (["touch", str(marker)],)),
        "builtins_open": _Reduce(open, (str(marker), "w")),
        "argparse_namespace_control": argparse.Namespace(lr=0.1),
    }


def _write_all(tmp: Path, marker: Path) -> list[Path]:
    files = []
    for name, obj in _payloads(marker).items():
        p = tmp / f"{name}.pt"
        torch.save({"w": torch.ones(1), "x": obj}, p)
        files.append(p)
    legacy = tmp / "legacy_non_zip.pt"  # payload in a later pickle stream of the old format
    torch.save({"w": torch.ones(1), "x": _Reduce(os.system, (f"touch {marker}",))}, legacy,
               _use_new_zipfile_serialization=False)
    scripted = tmp / "torchscript.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    return files + [legacy, scripted]


def test_twelve_crafted_checkpoints_are_refused(tmp_path):
    marker = tmp_path / "PWNED"
    files = _write_all(tmp_path, marker)
    assert len(files) == 12
    for p in files:
        with pytest.raises(WeightsError):
            load_pinned_checkpoint(p, hashlib.sha256(p.read_bytes()).hexdigest())
    assert not marker.exists()


def test_refused_under_the_unsafe_environment_too(tmp_path):
    marker = tmp_path / "PWNED"
    files = _write_all(tmp_path, marker)
    script = (
        "import hashlib, json, sys\n"
        "from workbench.io.weights import load_pinned_checkpoint\n"
        "from workbench.core.errors import WeightsError\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        load_pinned_checkpoint(p, hashlib.sha256(open(p, 'rb').read()).hexdigest()); out[p] = 'loaded'\n"
        "    except WeightsError as e:\n"
        "        out[p] = e.code\n"
        "print(json.dumps(out))\n")
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    proc = subprocess.run([sys.executable, "-c", script, *map(str, files)], capture_output=True, text=True,
                          env=env, timeout=120)
    outcome = json.loads(proc.stdout)
    assert set(outcome.values()) == {"bad_weights"} and len(outcome) == 12
    assert not marker.exists()


def test_cli_and_app_refuse_to_start_when_safe_loading_is_disabled():
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "zoo", "list"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" in proc.stderr
    script = (
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(ROOT / 'workbench' / 'app.py')!r}, default_timeout=60)\n"
        "at.run()\n"
        "print('ERR:' + ' '.join(e.value for e in at.error))\n"
        "print('TITLES:' + str(len(at.title)))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert "ERR:" in proc.stdout and "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" in proc.stdout, proc.stdout + proc.stderr
    assert "TITLES:0" in proc.stdout  # no page ran
