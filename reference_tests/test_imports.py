"""npconv's modules import each other without a cycle.

The graph is built from source, not by importing: every .py file under npconv/ is parsed,
and each *module-level* `import x` / `from x import y` statement (including those inside
module-level `if` / `try` / `with` blocks, but not those inside functions or classes, which
run later and may legitimately point back) becomes an edge to the npconv modules it loads.
Relative imports are resolved against the importing module's package. `from pkg import
name` is an edge to `pkg.name` when that is a module, and to `pkg` otherwise (the name is
read from pkg's finished `__init__`); importing `a.b.c` also runs `a` and `a.b`, so those
are edges too, except a package above the importing module, whose `__init__` is already
under way (a package's `__init__` importing its submodules, which import their siblings
through `from . import sibling`, is no cycle). A submodule that reads a *name* from its own
package's `__init__` (`from . import helper`) does depend on that `__init__` having
finished: that edge is drawn, and with the `__init__` importing the submodule it is a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "npconv"
PACKAGE = "npconv"


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under root (a package's name for its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = (PACKAGE,) + path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _module_level(body):
    """The statements that run when the module is imported: the body, and module-level
    if / try / with blocks, recursively; not function or class bodies."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def _with_parents(name: str, modules) -> list[str]:
    """`name` and every package above it that exists in `modules` (importing a.b.c runs a and a.b)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the npconv modules its module-level imports load (module docstring)."""
    modules = _modules() if modules is None else modules
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()

        def load(target: str, whole: bool = False) -> None:
            """Edges for importing `target`: the packages above it run first, except those
            above `name` (already under way); `whole`: target's own __init__ must have finished
            (a name is read from it), so the edge stands even when target is above `name`."""
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                return
            for loaded in _with_parents(target, modules):
                if loaded == name or (name.startswith(loaded + ".") and not (whole and loaded == target)):
                    continue
                edges.add(loaded)

        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _module_level(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    load(alias.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:
                        load(submodule)
                    else:
                        load(base, whole=True)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_module_level_imports_of_npconv_have_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "npconv.functional" in graph["npconv"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walker_sees_a_cycle_and_ignores_imports_inside_functions(tmp_path):
    """The checker itself: a two-module cycle through `from .b import *` is found, with its
    relative import resolved; the same back edge inside a function is not an edge; a
    submodule reading a name from its package's __init__ closes a cycle, one importing a
    sibling through `from . import sibling` does not."""
    pkg = tmp_path / "npconv"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a, sub\n")
    (pkg / "a.py").write_text("x = 1\nfrom .b import *  # noqa\n")
    (pkg / "b.py").write_text("from .a import x\n")
    (pkg / "c.py").write_text("def f():\n    from .d import y\n    return y\n")
    (pkg / "d.py").write_text("from . import c\ny = 2\n")
    sub = pkg / "sub"
    sub.mkdir()
    (sub / "__init__.py").write_text("from .m import f\nfrom .n import g\n")
    (sub / "m.py").write_text("from . import n\nfrom .. import c\ndef f():\n    return n.g\n")
    (sub / "n.py").write_text("g = 3\n")
    graph = import_graph(_modules(pkg))
    assert graph["npconv.a"] == {"npconv.b"} and graph["npconv.b"] == {"npconv.a"}
    assert graph["npconv.c"] == set() and graph["npconv.d"] == {"npconv.c"}
    assert graph["npconv.sub.m"] == {"npconv.sub.n", "npconv.c"}
    assert graph["npconv.sub"] == {"npconv.sub.m", "npconv.sub.n"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"npconv.a", "npconv.b"}
    (pkg / "a.py").write_text("x = 1\n")
    assert find_cycle(import_graph(_modules(pkg))) is None
    (sub / "n.py").write_text("from . import f\ng = 3\n")  # reads f from the unfinished sub/__init__
    cycle = find_cycle(import_graph(_modules(pkg)))
    assert cycle is not None and "npconv.sub" in cycle and "npconv.sub.n" in cycle
