"""The layers import only downwards, and no project module imports itself back round a cycle.

Every project module is parsed with `ast`; imports inside functions and under TYPE_CHECKING
count like module-level ones (they still tie the layers together and can still close a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from tests.support.paths import ROOT

SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
             ".pytest_cache", ".hypothesis"}

# No cycle is allowed anywhere (the engine's last one went with the executor restructuring).
KNOWN_CYCLES: set[frozenset[str]] = set()

TOP_WIRE_USERS = ("polymarket_client", "smart_pricing")
ENGINE_FORBIDDEN = ("ops", "notify", "webapp", "watcher", "executor", "notifier", "web", "demo")
DAEMONS = ("watcher", "executor")
PROGRAMS = ("watcher", "executor", "notifier", "web", "demo", "simulator")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def project_modules() -> dict[str, Path]:
    """Every Python module of the repository (tests, bench and migrations included), by name."""
    out: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        out[_module_name(path)] = path
    # the `admin` launcher has no .py suffix but is a module all the same
    out["admin"] = ROOT / "admin"
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a project module (None: not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except the bodies of `if TYPE_CHECKING:` blocks (never executed)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


@cache
def imports_of(module: str, *, typing_only_too: bool = True) -> frozenset[str]:
    """The project modules `module` imports anywhere in its body (functions included).

    With `typing_only_too=False`, imports under `if TYPE_CHECKING:` are left out: they are
    never executed, so they cannot close an import cycle (they still count for layering).
    """
    modules = project_modules()
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    nodes = list(ast.walk(tree)) if typing_only_too else _runtime_nodes(tree)
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module, path).split(".") if module else []
                keep = len(package) - (node.level - 1)
                base = ".".join(package[:keep] + ([base] if base else []))
            # `from pkg import sub` imports the submodule when there is one, else pkg's names
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                names.append(full if full in modules else base)
        for name in names:
            target = _resolve(name, modules) if name else None
            if target is not None and target != module:
                found.add(target)
    return frozenset(found)


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _in(module: str, *groups: str) -> bool:
    return _top(module) in groups


def _violations(sources: Iterable[str], allowed: Iterable[str] = (),
                forbidden: Iterable[str] = ()) -> list[str]:
    allowed, forbidden = tuple(allowed), tuple(forbidden)
    bad = []
    for module in sorted(sources):
        for target in sorted(imports_of(module)):
            if allowed and not _in(target, *allowed):
                bad.append(f"{module} imports {target}")
            if forbidden and _in(target, *forbidden):
                bad.append(f"{module} imports {target}")
    return bad


def _group(*tops: str) -> list[str]:
    return [m for m in project_modules() if _in(m, *tops)]


def test_the_module_list_is_complete() -> None:
    """The scan sees every layer (a broken walk would make every rule below pass vacuously)."""
    modules = project_modules()
    for name in ("infra.errors", "infra.logs", "wire.errors", "copying.heartbeats", "ops.cli",
                 "sim.core", "watcher", "executor", "crypto", "models", "polymarket_client",
                 "smart_pricing", "admin"):
        assert name in modules, name
    assert "infra.errors" in imports_of("wire.errors")
    assert "infra.startup" in imports_of("infra.daemon")  # a function-level import


def test_infra_imports_only_infra() -> None:
    """infra/ is the bottom layer."""
    assert _violations(_group("infra"), allowed=["infra"]) == []


def test_wire_imports_only_wire_and_infra() -> None:
    """The wire layer never reaches into the engine, ops or the top-level modules."""
    assert _violations(_group("wire"), allowed=["wire", "infra"]) == []


def test_client_and_pricing_import_only_wire_and_infra() -> None:
    """polymarket_client.py and smart_pricing.py sit on the wire layer only."""
    assert _violations(TOP_WIRE_USERS, allowed=["wire", "infra"]) == []


def test_sim_imports_only_sim_and_wire() -> None:
    """The simulator is a separate program: it shares only the wire vocabulary."""
    assert _violations(_group("sim"), allowed=["sim", "wire"]) == []


def test_engine_never_imports_ops_or_the_programs() -> None:
    """copying/ never imports ops, the daemons or the demo."""
    assert _violations(_group("copying"), forbidden=ENGINE_FORBIDDEN) == []


def test_ops_notify_and_webapp_never_import_the_programs() -> None:
    """The admin's logic, the notifier's package and the web app are imported by the programs,
    never the other way round (a program's module is its entry point only)."""
    for package in ("ops", "notify", "webapp"):
        assert _violations(_group(package), forbidden=PROGRAMS) == [], package


def test_daemons_never_import_ops() -> None:
    """watcher.py and executor.py run without the admin's logic."""
    assert _violations(DAEMONS, forbidden=["ops"]) == []


def _strongly_connected(graph: dict[str, frozenset[str]]) -> list[set[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, frozenset())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(component)
    return out


def test_cycle_finder_finds_cycles() -> None:
    """The cycle search itself works (a two-module and a three-module loop, one clean chain)."""
    graph = {"a": frozenset({"b"}), "b": frozenset({"a"}), "c": frozenset({"d"}),
             "d": frozenset({"e"}), "e": frozenset({"c"}), "f": frozenset({"a"})}
    assert sorted(map(sorted, _strongly_connected(graph))) == [["a", "b"], ["c", "d", "e"]]


def test_no_import_cycles() -> None:
    """No two project modules import each other, directly or round a loop (KNOWN_CYCLES aside)."""
    graph = {m: imports_of(m, typing_only_too=False) for m in project_modules()}
    cycles = [frozenset(c) for c in _strongly_connected(graph)]
    unexpected = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert unexpected == []
