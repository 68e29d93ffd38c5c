"""No import cycles in functions/: the module import graph, read from the source with `ast`, is
acyclic.

Every import statement counts, wherever it stands: module level, inside a function (a deferred
import is still a cycle, it only fails later and depending on the call order), under
`if TYPE_CHECKING:`; absolute (`import a.b`, `from a.b import c`) and relative (`from . import x`,
`from ..a import b`). `from package import name` is an edge to `package.name` when that is a
module of functions/, else to `package`. Imports of anything outside functions/ (stdlib,
third-party) are not edges. Importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`;
those implicit edges are left out (a package re-exporting its own submodule is fine).

A failure names each cycle with the file and line of every import on it."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SKIP_DIRS = {"__pycache__", "target", "src"}  # Maven build output and Java sources


@dataclass(frozen=True)
class Edge:
    target: str
    path: str
    line: int


def module_files(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every .py file below root (root is the import root)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS & set(rel.parts[:-1]):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            modules[".".join(parts)] = path
    return modules


def _package_of(module: str, path: Path) -> list[str]:
    parts = module.split(".")
    return parts if path.name == "__init__.py" else parts[:-1]


def imports_of(module: str, path: Path, known: set[str], root: Path) -> list[Edge]:
    """The edges from `module` to other modules in `known`, in source order."""
    edges: list[Edge] = []
    where = str(path.relative_to(root.parent))

    def add(target: str, node: ast.AST) -> None:
        if target in known:
            edges.append(Edge(target, where, node.lineno))

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(module, path)
                if node.level - 1 > len(package):
                    raise ValueError(f"{where}:{node.lineno}: relative import beyond the top level")
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                if sub in known:
                    add(sub, node)
                elif base:
                    add(base, node)
    return sorted(edges, key=lambda e: e.line)


def import_graph(root: Path = FUNCTIONS) -> dict[str, list[Edge]]:
    modules = module_files(root)
    known = set(modules)
    return {name: imports_of(name, path, known, root) for name, path in modules.items()}


def cycles(graph: dict[str, list[Edge]]) -> list[tuple[list[Edge], list[str]]]:
    """Per strongly connected component that has a cycle: one shortest cycle through its smallest
    module (as edges) and the component's modules (Tarjan's algorithm, then breadth-first)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # recursion depth <= number of modules (~50)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph[v]:
            w = e.target
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    found = []
    for component in components:
        members = set(component)
        start = min(component)
        if len(component) == 1 and not any(e.target == start for e in graph[start]):
            continue
        # breadth-first from start inside the component, back to start: a shortest cycle
        came: dict[str, tuple[str, Edge]] = {}  # module -> (the module before it, that import)
        frontier, back = [start], None
        while back is None:
            nxt = []
            for v in frontier:
                for e in graph[v]:
                    if e.target == start and back is None:
                        back = (v, e)
                    elif e.target in members and e.target != start and e.target not in came:
                        came[e.target] = (v, e)
                        nxt.append(e.target)
            frontier = nxt
        v, edge = back
        path = [edge]
        while v != start:
            v, edge = came[v]
            path.insert(0, edge)
        found.append((path, sorted(component)))
    return sorted(found, key=lambda found_one: found_one[1][0])


def describe(cycle: list[Edge], component: list[str]) -> str:
    names = [cycle[-1].target] + [e.target for e in cycle]
    sources = "; ".join(f"{e.path}:{e.line} imports {e.target}" for e in cycle)
    others = sorted(set(component) - set(names))
    more = f"  [also in cycles with these: {', '.join(others)}]" if others else ""
    return f"{' -> '.join(names)}  ({sources}){more}"


# --- the graph builder on a small tree --------------------------------------------------------

def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_every_kind_of_import_is_an_edge(tmp_path):
    root = write(tmp_path / "functions", {
        "a/__init__.py": "",
        "a/x.py": "import a.y\nimport os\n",
        "a/y.py": "from a import z\nfrom a.w import thing\n",
        "a/z.py": "from . import w\nfrom .w import other\n",
        "a/w.py": "def f():\n    from ..b import helper\n",
        "a/deep/__init__.py": "from .. import x\nfrom ..y import q\n",
        "b/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a.x import T\n",
        "b/helper.py": "import json, a.z\n",
    })
    graph = {m: [e.target for e in edges] for m, edges in import_graph(root).items()}
    assert graph == {
        "a": [], "a.x": ["a.y"], "a.y": ["a.z", "a.w"], "a.z": ["a.w", "a.w"],
        "a.w": ["b.helper"], "a.deep": ["a.x", "a.y"], "b": ["a.x"], "b.helper": ["a.z"],
    }


def test_a_cycle_is_reported_with_its_modules_and_lines(tmp_path):
    root = write(tmp_path / "functions", {
        "p/__init__.py": "",
        "p/store.py": "import os\n\ndef make():\n    from p.impl import Impl\n    return Impl()\n",
        "p/impl.py": "from p.store import Base\n",
        "p/fine.py": "from p import store\n",
        "q.py": "import q\n",
    })
    found = [describe(*c) for c in cycles(import_graph(root))]
    assert found == [
        "p.impl -> p.store -> p.impl  (functions/p/impl.py:1 imports p.store; "
        "functions/p/store.py:4 imports p.impl)",
        "q -> q  (functions/q.py:1 imports q)",
    ]


def test_an_acyclic_tree_has_no_cycle(tmp_path):
    root = write(tmp_path / "functions", {"a.py": "import b\n", "b.py": "import c\n", "c.py": ""})
    assert cycles(import_graph(root)) == []


# --- functions/ -------------------------------------------------------------------------------

def test_functions_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 20 and "query.handler" in graph  # the real tree was read
    found = cycles(graph)
    assert not found, "import cycles in functions/:\n" + "\n".join(describe(*c) for c in found)
