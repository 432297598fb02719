"""The house's import rules, measured: ``python -m tests.reliability.architecture_report``.

Builds the import graph of ``workbench/``, ``analyzers/``, ``models/`` and ``pages/`` from the source
(every import statement, also those inside functions and under ``if TYPE_CHECKING``), then prints the
floors, the imports that run back up, the import cycles, analyzers that import each other,
``workbench/`` naming ``analyzers`` or ``models``, and modules over the length limit. Exits 1 when any
of these is non-empty. ``tests/reliability/test_architecture.py`` asserts the same lists are empty.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("workbench", "analyzers", "models", "pages")
#: floor -> module-name prefixes (a module belongs to the floor of its longest matching prefix)
FLOORS = {
    1: ("workbench.core", "workbench.data", "workbench.io"),
    2: ("analyzers", "models"),
    3: ("workbench.runtime", "workbench.report"),
    4: ("workbench", "workbench.app", "workbench.cli", "workbench.api", "pages"),
}
FLOOR_NAMES = {1: "contracts, datasets, untrusted bytes", 2: "plug-ins: computation and the zoo",
               3: "runs jobs, renders reports", 4: "shells: widgets, arguments, Python calls"}
MAX_LINES = 400
#: modules allowed over MAX_LINES, each with the reason it cannot be split yet (empty: none)
LONG_MODULES_ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (both dotted module names of this repository) at ``path:line``."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four source folders."""
    return {module_name(p): p for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))}


def floor_of(module: str) -> int | None:
    best, floor = "", None
    for f, prefixes in FLOORS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, floor = p, f
    return floor


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest prefix of ``name`` that is a module of this repository (None: a library)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in known:
            return ".".join(parts[:i])
    return None


def imported_names(path: Path, module: str) -> list[tuple[str, int]]:
    """Every absolute dotted name an import statement in ``path`` brings in, with its line; for
    ``from a import b`` both ``a.b`` and ``a`` (the resolver keeps the one that is a module)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, path.name == "__init__.py")
            out += [(f"{base}.{a.name}" if base else a.name, node.lineno) for a in node.names]
    return out


def import_graph() -> list[Edge]:
    files = source_files()
    known = set(files)
    edges = set()
    for mod, path in files.items():
        rel = str(path.relative_to(ROOT))
        for name, line in imported_names(path, mod):
            target = _resolve(name, known)
            if target is not None and target != mod:
                edges.add(Edge(mod, target, rel, line))
    return sorted(edges, key=lambda e: (e.path, e.line, e.target))


def backup_imports(edges: list[Edge]) -> list[Edge]:
    """Imports from a lower floor to a higher one (and from any module without a floor)."""
    return [e for e in edges if floor_of(e.source) is None or floor_of(e.target) is None
            or floor_of(e.target) > floor_of(e.source)]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (each one import cycle or more),
    found by Tarjan's algorithm; each listed from its smallest name."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _analyzer_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "analyzers" and len(parts) > 1 else None


def analyzer_cross_imports(edges: list[Edge]) -> list[Edge]:
    """``analyzers/<a>/`` may import only ``analyzers/<a>/``, ``analyzers/_shared/`` and floor 1;
    ``analyzers/_shared/`` only itself and floor 1; ``models/`` never imports ``analyzers``."""
    bad = []
    for e in edges:
        top = e.source.split(".")[0]
        if top == "models" and e.target.split(".")[0] == "analyzers":
            bad.append(e)
        if top != "analyzers" or floor_of(e.target) == 1:
            continue
        b = _analyzer_package(e.target)
        if b is None or b not in (_analyzer_package(e.source), "_shared"):
            bad.append(e)
    return bad


def workbench_naming_plugins() -> list[str]:
    """``workbench/`` import statements (or ``importlib.import_module("...")`` literals) naming the
    ``analyzers`` or ``models`` packages: the framework finds plug-ins through the registry only."""
    hits = []
    for mod, path in source_files().items():
        if not mod.startswith("workbench"):
            continue
        rel = str(path.relative_to(ROOT))
        for name, line in imported_names(path, mod):
            if name.split(".")[0] in ("analyzers", "models"):
                hits.append(f"{rel}:{line}: imports {name}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) \
                    and node.args[0].value.split(".")[0] in ("analyzers", "models") \
                    and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
                hits.append(f"{rel}:{node.lineno}: imports {node.args[0].value!r} by string")
    return hits


def long_modules() -> list[str]:
    out = []
    for _, path in source_files().items():
        rel = str(path.relative_to(ROOT))
        n = len(path.read_text().splitlines())
        if n >= MAX_LINES and rel not in LONG_MODULES_ALLOWED:
            out.append(f"{rel}: {n} lines (limit {MAX_LINES})")
    return out


def report() -> tuple[str, int]:
    """The printed report and the number of violations in it."""
    edges = import_graph()
    files = source_files()
    lines = ["Floors (a module imports only its own floor and the floors below):"]
    for f in sorted(FLOORS, reverse=True):
        mods = [m for m in files if floor_of(m) == f]
        lines.append(f"  floor {f}  {FLOOR_NAMES[f]}: {len(mods)} modules; "
                     f"{', '.join(p for p in FLOORS[f] if any(m == p or m.startswith(p + '.') for m in mods))}")
    lines.append(f"  {len(edges)} imports between these modules (function-level imports included)")
    sections = [("Back-up imports", [str(e) for e in backup_imports(edges)]),
                ("Cycles", [" <-> ".join(c) for c in cycles(edges)]),
                ("Plug-ins importing each other (analyzers <-> analyzers, analyzers <-> models)", [str(e) for e in
                                                                             analyzer_cross_imports(edges)]),
                ("workbench/ naming analyzers or models", workbench_naming_plugins()),
                (f"Modules of {MAX_LINES} lines or more", long_modules())]
    for title, items in sections:
        lines.append(f"{title}: {len(items) or 'none'}")
        lines += [f"  {i}" for i in items]
    if LONG_MODULES_ALLOWED:
        lines.append("Allowed long modules: " + "; ".join(f"{k} ({v})" for k, v in LONG_MODULES_ALLOWED.items()))
    return "\n".join(lines), sum(len(items) for _, items in sections)


def main() -> int:
    text, violations = report()
    print(text)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
