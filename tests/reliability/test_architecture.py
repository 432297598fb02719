"""Plan items 18-19: the house rules a machine can check, and minimum versions of the risky pins."""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOOR1 = ("workbench/core", "workbench/data", "workbench/io")
FLOOR3 = ("workbench/runtime", "workbench/report")


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
    assert _hits(_files(*FLOOR1), ("workbench.runtime", "workbench.report", "analyzers", "models", "pages")) == []
    assert _hits(_files(*FLOOR3), ("analyzers", "models", "pages")) == []
    assert _hits(_files("analyzers", "models"), ("workbench.runtime", "workbench.report", "pages")) == []


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
