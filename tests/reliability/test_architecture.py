"""Plan items 18-19: the house rules a machine can check (floors, cycles, plug-ins apart, module length;
the graph comes from tests/reliability/architecture_report.py), and minimum versions of the risky pins."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.reliability import architecture_report as arch

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _calls(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name):
            out.add(f"{node.func.value.id}.{node.func.attr}")
    return out


def _files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def _hits(files, bad_prefixes) -> list[str]:
    return [f"{p.relative_to(ROOT)} imports {m}" for p in files for m in _imports(p)
            if any(m == b or m.startswith(b + ".") for b in bad_prefixes)]


def test_streamlit_only_in_app_and_pages():
    files = [p for p in _files("workbench", "analyzers", "models") if p.name != "app.py"]
    assert _hits(files, ("streamlit",)) == []


def test_pages_import_no_torch():
    assert _hits(_files("pages"), ("torch", "torchvision", "captum", "zennit")) == []


def test_floors_do_not_import_upwards():
    """Every import statement, function-level ones included, runs down the floors or stays on one."""
    edges = arch.import_graph()
    assert len(edges) > 100  # the graph really was built
    assert [str(e) for e in arch.backup_imports(edges)] == []


def test_no_import_cycle_on_any_floor():
    assert arch.cycles(arch.import_graph()) == []


def test_cycle_finder_finds_a_planted_cycle_and_a_backup_import():
    E = arch.Edge
    planted = [E("workbench.data.a", "workbench.io.b", "x", 1), E("workbench.io.b", "workbench.data.a", "y", 2),
               E("workbench.io.b", "workbench.core.c", "z", 3), E("workbench.core.c", "workbench.runtime.d", "w", 4)]
    assert arch.cycles(planted) == [["workbench.data.a", "workbench.io.b"]]
    assert [e.line for e in arch.backup_imports(planted)] == [4]


def test_analyzers_import_only_themselves_shared_and_floor_one():
    E = arch.Edge
    planted = [E("analyzers.lrp.analyzer", "analyzers.attribution.result", "p", 1),
               E("analyzers.lrp.analyzer", "analyzers._shared.lrp", "p", 2),
               E("analyzers.lrp.analyzer", "models.zoo", "p", 3),
               E("analyzers._shared.lrp", "workbench.data.registry", "p", 4),
               E("models.zoo", "analyzers.lrp", "q", 5)]
    assert [e.line for e in arch.analyzer_cross_imports(planted)] == [1, 3, 5]
    assert [str(e) for e in arch.analyzer_cross_imports(arch.import_graph())] == []


def test_workbench_never_names_analyzers_or_models():
    assert arch.workbench_naming_plugins() == []


def test_modules_stay_under_the_length_limit():
    assert arch.long_modules() == []
    assert all(reason.strip() for reason in arch.LONG_MODULES_ALLOWED.values())


def test_architecture_report_runs_and_is_clean():
    out = subprocess.run([sys.executable, "-m", "tests.reliability.architecture_report"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "Back-up imports: none" in out.stdout and "Cycles: none" in out.stdout, out.stdout + out.stderr
    assert out.returncode == 0, out.stdout


def test_untrusted_decoders_only_in_io_and_models():
    files = [p for p in _files("workbench", "analyzers", "pages")
             if not str(p.relative_to(ROOT)).startswith("workbench/io/")]
    bad = {"torch.load", "pickle.load", "pickle.loads", "Image.open", "np.load"}
    hits = [f"{p.relative_to(ROOT)}: {c}" for p in files for c in _calls(p) & bad
            if not (c == "np.load" and p.name == "result.py")]  # result.py: np.load(allow_pickle=False)
    assert hits == []


def test_report_templates_autoescape():
    src = (ROOT / "workbench/report/html.py").read_text()
    assert "autoescape=True" in src
    template = (ROOT / "workbench/report/templates/report.html.j2").read_text()
    assert template.count("|safe") == 2  # plotly.js and the escaped figure JSON, nothing user-written


@pytest.mark.parametrize("package, minimum", [("torch", (2, 10)), ("streamlit", (1, 60)), ("pillow", (12, 3))])
def test_minimum_versions_of_security_relevant_pins(package, minimum):
    got = tuple(int(x) for x in version(package).split("+")[0].split(".")[:2])
    assert got >= minimum, f"{package} {version(package)} < {minimum}"


def test_zennit_is_the_version_with_the_exact_batchnorm_merge():
    """requirements.txt cannot pin it (Requires-Python >= 3.11.11): the Makefile installs it; a bare
    `pip install -r requirements.txt` would silently give 0.5.1. See README "Pinned versions"."""
    assert version("zennit") == "1.0.0", "run: pip install --no-deps --ignore-requires-python zennit==1.0.0"
