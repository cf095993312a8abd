"""Imports go one way: no import cycles in ``commbox_async`` outside ``TYPE_CHECKING``.

Read from the source (no module is imported), counting every import statement, including the
ones deferred into functions: a deferred import hides a cycle from Python, not from a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Container, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

import commbox_async

PACKAGE = Path(commbox_async.__file__).parent

#: Cycles that exist outside ``testing/`` and are owned by other work in progress (issue 19).
#: Each entry is one strongly connected set of modules; delete an entry once it is broken up.
#: The test fails on any cycle not listed here, and on a listed one that no longer exists.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package is its __init__)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import under ``nodes``, at any depth, except the body of ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node))


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: Container[str]
) -> Iterator[str]:
    """The package's modules an import statement loads. ``from pkg import sub`` needs the
    submodule only; ``from pkg import name`` needs ``pkg`` itself (its ``__init__``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    source = ".".join(p for p in (base if node.level else "", node.module or "") if p)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in modules else source


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Which modules of the package each module imports."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = {
            target
            for node in _import_nodes(tree.body)
            for target in _targets(node, name, is_package, modules)
            if target in modules and target != name
        }
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _describe(found: Iterable[frozenset[str]]) -> str:
    return "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_the_package_has_no_import_cycles_but_the_known_ones() -> None:
    found = set(cycles(import_graph(module_files())))
    assert not found - KNOWN_CYCLES, f"new import cycles: {_describe(found - KNOWN_CYCLES)}"
    assert not KNOWN_CYCLES - found, (
        f"gone, delete from KNOWN_CYCLES: {_describe(KNOWN_CYCLES - found)}"
    )


def test_the_testing_package_has_no_import_cycles() -> None:
    found = cycles(import_graph(module_files()))
    assert not [c for c in found if any(m.startswith("commbox_async.testing") for m in c)]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.py": "from . import b\n", "b.py": "from .a import x\n"}, [{"p.a", "p.b"}]),
        ({"a.py": "def f():\n    from .b import x\n", "b.py": "import p.a\n"}, [{"p.a", "p.b"}]),
        (
            {
                "a.py": "import typing\nif typing.TYPE_CHECKING:\n    from .b import B\n",
                "b.py": "from .a import x\n",
            },
            [],
        ),
        ({"__init__.py": "from .a import x\n", "a.py": "from . import y\n"}, [{"p", "p.a"}]),
        (
            {
                "s/__init__.py": "from .m import x\n",
                "s/m.py": "from .. import a\n",
                "a.py": "from .s import m\n",
            },
            [{"p.a", "p.s.m"}],
        ),
        ({"a.py": "from . import b\n", "b.py": "import json\n"}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(
    tmp_path: Path, files: dict[str, str], expected: list[set[str]]
) -> None:
    root = tmp_path / "p"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert sorted(map(sorted, cycles(import_graph(module_files(root))))) == sorted(
        map(sorted, expected)
    )
