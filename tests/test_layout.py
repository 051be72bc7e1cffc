"""The tree shows the architecture: no import cycles, and dependencies point one way.

Every module of the package belongs to one layer (the longest matching prefix in
``LAYERS``); a module may import its own layer's package and the layers *below* it,
never one above or beside it. ``stores`` and ``models`` share a rank, so neither may
import the other. Imports are read from the source with ``ast`` (module-level and lazy
ones inside functions alike); those under ``if TYPE_CHECKING:`` obey the layering but
do not count as cycles, since they never run.

Run ``python tests/test_layout.py`` to print the layers and what each imports.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

PACKAGE = Path(__file__).resolve().parent.parent / "threadline"

#: (module prefix, rank): a module may import modules of a lower rank, or of its own group.
LAYERS: dict[str, int] = {
    "threadline._errors": 0,  # the one exception tree
    "threadline._concurrency": 0,  # the one sync->async adapter
    "threadline._foreign": 0,  # which integration converts another framework's objects
    "threadline._redact": 0,  # the one way to show a URL without its secrets
    "threadline.messages": 1,
    "threadline.core": 2,
    "threadline.models": 3,
    "threadline.stores": 3,
    "threadline.memory": 4,
    "threadline.langchain": 5,  # integrations: one module (or package) per framework
    "threadline.langgraph": 5,
    "threadline.agents": 5,
    "threadline.llama_index": 5,
    "threadline.pydantic_ai": 5,
    "threadline": 6,  # the curated public API (threadline/__init__.py) only
    "threadline.server": 7,
    "threadline.cli": 8,
    "threadline.__main__": 9,
}


class Import(NamedTuple):
    source: str
    target: str
    line: int
    type_checking: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def group(module: str) -> str:
    """The ``LAYERS`` key a module belongs to; ``threadline`` itself only for the facade."""
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best == "threadline" and module != "threadline":
        return ""  # a top-level private module that no layer claims
    return best


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: Iterable[str]) -> list[Import]:
    """The imports of threadline modules in one file, resolved to module names."""
    known = set(known)
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str, line: int, type_checking: bool) -> None:
        if target.split(".")[0] == "threadline":
            found.append(Import(name, target, line, type_checking))

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, type_checking)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                # ``from package import submodule`` imports the submodule.
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base, node.lineno, type_checking)
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def all_imports() -> list[Import]:
    found = modules()
    return [imp for name, path in found.items() for imp in imports_of(name, path, found)]


def layer_violations(imports: Iterable[Import]) -> list[str]:
    problems = []
    for imp in imports:
        source, target = group(imp.source), group(imp.target)
        if not source:
            problems.append(f"{imp.source}: no layer claims this module; add it to a package")
        elif not target:
            problems.append(f"{imp.source}:{imp.line} imports {imp.target}, which no layer "
                            "claims")
        elif source != target and LAYERS[target] >= LAYERS[source]:
            problems.append(
                f"{imp.source}:{imp.line} imports {imp.target}: {source} (rank "
                f"{LAYERS[source]}) may only import lower layers, not {target} (rank "
                f"{LAYERS[target]})")
    return problems


def find_cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Each import cycle among modules (runtime imports only), as a path."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_checking and imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


# -- the package ---------------------------------------------------------------------------


def test_every_module_has_a_layer() -> None:
    unclaimed = [name for name in modules() if not group(name)]
    assert not unclaimed, f"modules outside every layer: {unclaimed}"


def test_imports_point_down_the_layers() -> None:
    problems = layer_violations(all_imports())
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    cycles = find_cycles(all_imports())
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_only_the_command_line_imports_the_command_line() -> None:
    outside = [imp for imp in all_imports()
               if group(imp.target) == "threadline.cli"
               and group(imp.source) not in ("threadline.cli", "threadline.__main__")]
    assert not outside, outside


def test_lazy_names_point_at_real_modules_of_lower_layers() -> None:
    import threadline
    import threadline.stores
    from threadline import _foreign

    known = modules()
    targets = [*threadline._LAZY.values(),
               *(t.partition(":")[0] for t in threadline.stores.BACKENDS.values())]
    for target in targets:
        assert target in known, target
        assert LAYERS[group(target)] < LAYERS["threadline"], target
    # The converters of other frameworks' objects, and the integration functions the core
    # calls by name, live in the integration layer.
    integrations = {prefix for prefix, rank in LAYERS.items()
                    if rank == LAYERS["threadline.langchain"]}
    targets = [t for converters in _foreign.CONVERTERS.values() for t in converters.values()]
    for target in [*targets, *_foreign.FUNCTIONS.values()]:
        module, _, name = target.partition(":")
        assert module in known and group(module) in integrations, target
        assert callable(getattr(importlib.import_module(module), name)), target


# -- the checker itself can fail -------------------------------------------------------------


def test_checker_reports_an_upward_import_and_a_cycle() -> None:
    fake = [
        Import("threadline.messages._values", "threadline.stores._base", 3, False),
        Import("threadline.stores._base", "threadline.models._base", 4, False),
        Import("threadline.models._base", "threadline.cli._main", 5, True),
        Import("threadline.core._a", "threadline.core._b", 1, False),
        Import("threadline.core._b", "threadline.core._a", 2, False),
        Import("threadline.core._b", "threadline.core._c", 2, True),
        Import("threadline.core._c", "threadline.core._b", 2, False),
    ]
    problems = layer_violations(fake)
    assert len(problems) == 3
    assert "threadline.messages (rank 1)" in problems[0]
    assert "not threadline.models (rank 3)" in problems[1]  # stores and models: beside
    assert find_cycles(fake) == [["threadline.core._a", "threadline.core._b",
                                  "threadline.core._a"]]  # the TYPE_CHECKING one is not


def test_checker_reads_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from threadline.core import _runnables\n"
        "if TYPE_CHECKING:\n"
        "    from threadline.stores._base import Store\n"
        "def f():\n"
        "    import threadline.models._base\n",
        encoding="utf-8")
    found = imports_of("threadline.messages.x", source, ["threadline.core._runnables"])
    assert [(i.target, i.type_checking) for i in found] == [
        ("threadline.core._runnables", False),
        ("threadline.stores._base", True),
        ("threadline.models._base", False),
    ]


if __name__ == "__main__":  # a map of the layers, for the README and reviews
    imports = all_imports()
    by_group: dict[str, set[str]] = {}
    for imp in imports:
        if group(imp.source) != group(imp.target):
            by_group.setdefault(group(imp.source), set()).add(group(imp.target))
    counts: dict[str, int] = {}
    for name in modules():
        counts[group(name)] = counts.get(group(name), 0) + 1
    for prefix, rank in sorted(LAYERS.items(), key=lambda kv: (kv[1], kv[0])):
        if prefix in counts:
            uses = ", ".join(sorted(by_group.get(prefix, ()), key=lambda g: -LAYERS[g]))
            print(f"{rank}  {prefix:<24} {counts[prefix]:>3} modules  -> {uses or '-'}")
    problems = layer_violations(imports)
    cycles = find_cycles(imports)
    print(f"{len(imports)} imports, {len(problems)} against the layers, {len(cycles)} cycles")
    sys.exit(1 if problems or cycles else 0)
