"""The package's shape: no import circle between its modules, lazy (function-level) imports included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ingest"


def _module(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its body)."""
    modules = {_module(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        graph[name].add(f"{target}.{alias.name}")
                    elif target in modules:
                        graph[name].add(target)
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules}
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    graph = import_graph()
    # a package's __init__ re-exporting its own modules is not a circle with them
    for name in list(graph):
        graph[name] = {t for t in graph[name] if not (t != name and name.startswith(t + "."))}
    assert cycles(graph) == []


def test_the_detector_finds_a_circle(tmp_path):
    pkg = tmp_path / "ingest"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .a import y\n")
    assert cycles(import_graph(pkg)) == [["ingest.a", "ingest.b"]]


# the stages in the order data flows; a module may import its own stage and the ones before it
STAGES = ["foundation", "sources", "text", "judge", "store", "run", "out", "service", "cli"]
FOUNDATION = {"ingest", "ingest.__main__", "ingest.blobs", "ingest.timefmt", "ingest.config"}


def stage(module: str) -> str:
    parts = module.split(".")
    if module in FOUNDATION or parts[:2] == ["ingest", "config"]:
        return "foundation"
    assert len(parts) > 1 and parts[1] in STAGES, f"{module} is in no stage: move it into one (see ARCHITECTURE.md)"
    return parts[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({stage(m)}) imports {t} ({stage(t)})" for m, targets in graph.items() for t in targets
                  if m != "ingest.__main__" and STAGES.index(stage(t)) > STAGES.index(stage(m)))


def test_no_stage_imports_a_later_one():
    """sources < text < judge < store < run < out < service < cli: a lower stage never imports a
    higher one (function-level imports and TYPE_CHECKING ones included), so each can be read,
    tested and replaced with only what is below it."""
    assert upward_imports(import_graph()) == []


def test_the_stage_check_finds_an_upward_import(tmp_path):
    pkg = tmp_path / "ingest"
    for sub in ("sources", "store"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "rows.py").write_text("X = 1\n")
    (pkg / "sources" / "fetch.py").write_text("def f():\n    from ingest.store.rows import X\n    return X\n")
    assert upward_imports(import_graph(pkg)) == ["ingest.sources.fetch (sources) imports ingest.store.rows (store)"]


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}


SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))\b",
                 re.IGNORECASE | re.DOTALL)


def sql_outside_the_store(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value) \
                    and re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE)\b", node.value, re.IGNORECASE):
                found.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return found


def test_nothing_but_the_store_speaks_sql(tmp_path):
    """The store is the one place SQL is written (ARCHITECTURE.md): a query elsewhere is a contract
    method waiting to be written."""
    assert sql_outside_the_store() == []
    pkg = tmp_path / "ingest"
    (pkg / "run").mkdir(parents=True)
    (pkg / "run" / "x.py").write_text('Q = "SELECT id FROM articles WHERE url=?"\n')
    assert sql_outside_the_store(pkg) == ["ingest/run/x.py:1"]
