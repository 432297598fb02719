"""Start-up cost of the CLI (issue 21): `workbench --help` and `workbench zoo list` never import torch
(~3 s of the floor), `workbench run X` imports analyzer X alone, not every registered analyzer, and neither
listing the analyzers nor running one imports the heavy stacks that only some analyzers' runs need (zennit
alone was 1.2 s, through torchvision, on every `workbench analyzers` and on the app's first page).

Read from ``sys.modules`` of a fresh interpreter when the command returns: the modules a command imported are
listed, not guessed (``-X importtime`` misses modules loaded by ``importlib.import_module``, which is how entry
points and the analyzer packages' lazy attributes load theirs). No timings are asserted (speed is `make bench`'s
job: its cli_cold_start row).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from models.weights import PARAM_TABLE, _count_params, build_key
from workbench.core.cards import list_cards

DRIVER = ("import json, os, sys; sys.argv = ['workbench'] + sys.argv[1:]\n"
          "from workbench.cli import main\n"
          "try:\n    rc = main()\nexcept SystemExit as e:\n    rc = e.code\n"
          "with open(os.environ['WB_MODULES_OUT'], 'w') as f:\n    json.dump(sorted(sys.modules), f)\n"
          "sys.exit(rc or 0)\n")


def imported(*args: str, tmp_path=None) -> set[str]:
    """Names of every module in ``sys.modules`` after the CLI command ``args`` ran in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "modules.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "WB_MODULES_OUT": str(out)}
        proc = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, env=env,
                              timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        names = set(json.loads(out.read_text()))
    assert "workbench.cli" in names  # the list was read, not empty
    return names


#: libraries that only some analyzers' runs need (LRP: zennit, which imports torchvision; attribution: captum, which
#: imports matplotlib; EEG: mne, mne_icalabel, braindecode; transferability: umap, numba, sklearn; sweeps: ray; ...),
#: and torch's compiler stack (sympy, triton), which torchvision and torch.utils.flop_counter import and torch itself
#: does not: importing an analyzer class, to list it or to show its page, must import none of them
HEAVY = frozenset({"zennit", "torchvision", "captum", "matplotlib", "mne", "mne_icalabel", "umap", "numba", "scipy",
                   "sklearn", "pandas", "ray", "braindecode", "torchcrepe", "timm", "sympy", "triton"})
TORCHVISION = {"torchvision", "sympy", "triton"}  # torchvision with what it imports of torch's compiler stack


@pytest.mark.parametrize("args", [("--help",), ("zoo", "list"), ("zoo", "list", "--json")])
def test_help_and_zoo_list_do_not_import_torch(args):
    names = imported(*args)
    assert "torch" not in names and "torchvision" not in names
    # nor the heavy stacks behind some cards and data sets (mne_icalabel's package import alone was 2.7 s)
    assert not {"mne", "mne_icalabel", "scipy.signal", "scipy.stats", "sklearn", "pandas"} & names


def test_listing_the_analyzers_imports_no_heavy_stack():
    """`workbench analyzers` imports every analyzer class (the app's navigation and first page do the same
    through ``list_analyzers``), and none of the stacks their runs need."""
    from importlib.metadata import entry_points

    names = imported("analyzers", "--json")
    # the installed analyzers (entry points), not this process's registry, which holds what other tests registered
    declared = {ep.value.partition(":")[0] for ep in entry_points(group="workbench.analyzers")}
    assert len(declared) >= 10 and declared <= names  # every class was imported, so the check means something
    assert not HEAVY & names, sorted(HEAVY & names)


RF_RUN = ("run", "receptive_field", "--model", "resnet18.untrained", "--set", "erf=false", "--set", "probe=false")
IG_RUN = ("run", "attribution", "--model", "digits_vgg.sk", "--data", "digits:0", "--set", "sanity_check=false")
LRP_RUN = ("run", "lrp", "--model", "digits_vgg.sk", "--data", "digits:0", "--set", "sanity_check=false")
RUNS = [  # (command, the analyzer package it runs, what that run itself needs of HEAVY)
    # resnet18 is torchvision's; the card's default picture comes from scikit-image, which imports scipy
    pytest.param(RF_RUN, "receptive_field", TORCHVISION | {"scipy"}, id="receptive_field"),
    # IG is captum's; captum.attr's own package import pulls in matplotlib.pyplot (captum 0.9)
    pytest.param(IG_RUN, "attribution", {"captum", "matplotlib"}, id="attribution",
                 marks=pytest.mark.zoo("digits_vgg.sk")),
    pytest.param(LRP_RUN, "lrp", TORCHVISION | {"zennit"}, id="lrp", marks=pytest.mark.zoo("digits_vgg.sk")),
]


@pytest.mark.parametrize(("args", "package", "needs"), RUNS)
def test_run_imports_only_the_analyzer_it_runs(args, package, needs, tmp_path):
    names = imported(*args, "--out", str(tmp_path / "out"), tmp_path=tmp_path)
    packages = {n.split(".")[1] for n in names if n.startswith("analyzers.") and n.count(".") >= 1}
    assert packages - {"_shared"} == {package}
    assert not (HEAVY - needs) & names, sorted((HEAVY - needs) & names)
    assert (tmp_path / "out" / "result.json").is_file()


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
