"""The layout shows the design: every module imports on its own, and the project's import graph,
built from the source with the imports inside functions counted too, has no circle."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "alerts")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports at run time, wherever the import statement stands (a
    package's ``__init__`` counts as the package). Imports under ``if TYPE_CHECKING:`` are for
    the type checker only and never run, so they are not edges."""
    out = set()
    is_pkg = path.name == "__init__.py"
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        for t in targets:
            while t and t not in known:          # dashboard.x.attr -> dashboard.x
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circle_counting_imports_inside_functions():
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_sees_a_circle_made_of_imports_inside_functions(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from pkg import b\n")
    b = tmp_path / "b.py"
    b.write_text("import pkg.a\n")
    known = {"pkg", "pkg.a", "pkg.b"}
    graph = {"pkg": set(), "pkg.a": imports_of("pkg.a", a, known),
             "pkg.b": imports_of("pkg.b", b, known)}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_imports_on_its_own(name):
    importlib.import_module(name)


def unmarked_function_imports(path: Path) -> list[str]:
    """Imports of the project's modules inside functions without a ``lazy`` comment on their
    line or just above their block: an import is put inside a function only to keep its cost
    off start-up (and says so), never to dodge a circle."""
    lines = path.read_text().splitlines()
    out = []
    for fn in ast.walk(ast.parse("\n".join(lines), str(path))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if not any(n.split(".")[0] in PACKAGES for n in names):
                continue
            i = node.lineno - 1
            while i > 0 and lines[i - 1].strip().startswith(("from ", "import ")):
                i -= 1                       # the first line of this block of imports
            said = [lines[node.lineno - 1], lines[i - 1] if i > 0 else ""]
            if not any("lazy" in line.partition("#")[2].lower() for line in said):
                out.append(f"{path}:{node.lineno}")
    return out


def test_imports_inside_functions_are_only_the_lazy_ones_that_say_so():
    assert [where for path in modules().values() for where in unmarked_function_imports(path)] == []


def test_the_import_check_sees_an_unmarked_import_inside_a_function(tmp_path):
    m = tmp_path / "m.py"
    m.write_text("def f():\n    from dashboard import model\n\n\n"
                 "def g():\n    # lazy: start-up cost\n    from dashboard import model\n"
                 "    from dashboard import runtime\n")
    assert unmarked_function_imports(m) == [f"{m}:2"]
