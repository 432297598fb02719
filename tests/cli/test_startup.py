"""Start-up cost of the CLI (issue 21): `workbench --help` and `workbench zoo list` never import torch
(~3 s of the floor), and `workbench run X` imports analyzer X alone, not every registered analyzer.

Measured with ``python -X importtime`` in a fresh process: the modules a command imported are read from
its import log, not guessed. No timings are asserted (speed is `make bench`'s job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from models.weights import PARAM_TABLE, _count_params, build_key
from workbench.core.cards import list_cards

DRIVER = ("import sys; sys.argv = ['workbench'] + sys.argv[1:]\n"
          "from workbench.cli import main\n"
          "try:\n    rc = main()\nexcept SystemExit as e:\n    rc = e.code\n"
          "sys.exit(rc or 0)\n")


def imported(*args: str, tmp_path=None) -> set[str]:
    """Names of every module the CLI command ``args`` imported (fresh interpreter, -X importtime)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", DRIVER, *args], capture_output=True,
                          text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    assert "workbench.cli" in names, proc.stderr[-500:]  # the log was read, not empty
    return names


@pytest.mark.parametrize("args", [("--help",), ("zoo", "list"), ("zoo", "list", "--json")])
def test_help_and_zoo_list_do_not_import_torch(args):
    names = imported(*args)
    assert "torch" not in names and "torchvision" not in names
    # nor the heavy stacks behind some cards and data sets (mne_icalabel's package import alone was 2.7 s)
    assert not {"mne", "mne_icalabel", "scipy.signal", "scipy.stats", "sklearn", "pandas"} & names


def test_run_imports_only_the_analyzer_it_runs(tmp_path):
    names = imported("run", "receptive_field", "--model", "resnet18.untrained", "--set", "erf=false",
                     "--set", "probe=false", "--out", str(tmp_path / "rf"), tmp_path=tmp_path)
    packages = {n.split(".")[1] for n in names if n.startswith("analyzers.") and n.count(".") >= 1}
    assert packages - {"_shared"} == {"receptive_field"}
    assert (tmp_path / "rf" / "result.json").is_file()


def test_the_parameter_table_matches_the_builders():
    """`zoo list` reads parameter counts from models/param_counts.json (building an architecture needs
    torch); every registered card's builder must be in it with the count the meta-device build gives."""
    table = json.loads(PARAM_TABLE.read_text())
    # the zoo's own cards: not those tests register, nor on-demand ids (torchvision.<any>, timm.<any>) that a
    # test or a user typed earlier in this process (any architecture name works there; they are counted live)
    fresh = {build_key(c.build): _count_params(c.id, c.build) for c in list_cards()
             if build_key(c.build).startswith("models.") and c.family not in ("torchvision", "timm", "user")}
    assert {k: table.get(k) for k in fresh} == fresh, (
        f"regenerate {PARAM_TABLE}:\n{json.dumps(dict(sorted({**table, **fresh}.items())), indent=1)}")
