"""Start-up cost of the app (issue 21): the first page (home) renders without importing the heavy stacks that
only some analyzers' runs need. The navigation and the home page list every analyzer, so every analyzer class
is imported; zennit behind the LRP classes alone was 1.2 s of the first page's 2.8 s of CPU.

Read from ``sys.modules`` of a fresh interpreter that ran the app once with Streamlit's AppTest. torch itself is
still imported (every analyzer module imports it, and reading an analyzer's title needs its class); no timings
are asserted (speed is `make bench`'s job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "workbench" / "app.py"
#: the same stacks tests/cli/test_startup.py keeps out of `workbench analyzers`
HEAVY = frozenset({"zennit", "torchvision", "captum", "matplotlib", "mne", "mne_icalabel", "umap", "numba", "scipy",
                   "sklearn", "pandas", "ray", "braindecode", "torchcrepe", "timm", "sympy", "triton"})
DRIVER = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
from importlib.metadata import entry_points
# the installed analyzers (entry points, read without loading them), not what a test process registered
declared = sorted({ep.value.partition(":")[0] for ep in entry_points(group="workbench.analyzers")})
json.dump({"exception": [e.value for e in at.exception], "title": [t.value for t in at.title],
           "declared": declared, "modules": sorted(sys.modules)}, sys.stdout)
"""


def test_the_first_page_imports_no_heavy_stack(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(APP)], capture_output=True, text=True, env=env,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert not got["exception"], got["exception"]
    assert got["title"] == ["CNN interpretability workbench"]  # the home page ran
    names = set(got["modules"])
    assert len(got["declared"]) >= 10 and set(got["declared"]) <= names  # every analyzer was imported for the menu
    assert not HEAVY & names, sorted(HEAVY & names)
