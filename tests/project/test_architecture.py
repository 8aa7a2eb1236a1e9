"""ARCHITECTURE.md and the README's module table say what the code is: every module they name
exists, and every package of the code is described in both."""

from __future__ import annotations

import re

from tests.support.paths import ROOT

# a module named in backticks: `copying/submit.py`, `watcher.py`, `wire/rpc.py` ...
MODULE = re.compile(r"`((?:[a-z_]+/)*[a-z_]+\.py)`")
PACKAGE = re.compile(r"`([a-z_]+)/`")


def _packages() -> set[str]:
    return {p.parent.name for p in ROOT.glob("*/__init__.py")
            if p.parent.name not in ("tests", "migrations", "bench", "scripts")}


def _named_modules(text: str) -> set[str]:
    return set(MODULE.findall(text))


def test_architecture_names_only_modules_that_exist() -> None:
    """Each module ARCHITECTURE.md names is a file of the repository."""
    named = _named_modules((ROOT / "ARCHITECTURE.md").read_text())
    assert len(named) > 30
    assert sorted(m for m in named if not (ROOT / m).is_file()) == []


def test_architecture_describes_every_package() -> None:
    """Every code package appears in ARCHITECTURE.md's package table."""
    described = set(PACKAGE.findall((ROOT / "ARCHITECTURE.md").read_text()))
    assert sorted(_packages() - described) == []


def test_readme_module_table_is_the_package_tree() -> None:
    """The README's module table names every package and only modules that exist."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| package | modules |"):]
    table = table[:table.index("\n\n")]
    assert sorted(_packages() - set(PACKAGE.findall(table))) == []
    assert sorted(m for m in _named_modules(table) if not (ROOT / m).is_file()) == []


def test_readme_module_table_lists_every_module_of_each_package() -> None:
    """Each package's row names all of its modules: the table is the package tree, not a sample."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| package | modules |"):]
    table = table[:table.index("\n\n")]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z_]+)/` \| (.*) \|$", table, re.M)}
    missing = []
    for package in sorted(_packages()):
        listed = set(re.findall(r"`([a-z_]+)`", rows.get(package, "")))
        for module in (ROOT / package).glob("*.py"):
            if module.stem != "__init__" and module.stem not in listed:
                missing.append(f"{package}/{module.name}")
    assert missing == []


def test_readme_and_architecture_name_only_files_that_exist() -> None:
    """Every `path.py` the README or ARCHITECTURE.md names (in backticks) is in the repository."""
    for doc in ("README.md", "ARCHITECTURE.md", "deploy/OPERATIONS.md"):
        text = (ROOT / doc).read_text()
        named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_0-9]+\.py)", text))
        assert sorted(m for m in named if not (ROOT / m).is_file()) == [], doc


def test_tests_mirror_the_packages() -> None:
    """Test files live in a folder named after the package they test (or e2e/, project/)."""
    allowed = _packages() | {"e2e", "project"}
    misplaced = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                 if p.parent.name not in allowed or p.parent.parent != ROOT / "tests"]
    assert misplaced == []
    assert {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").exists()} \
        <= allowed | {"support"}
