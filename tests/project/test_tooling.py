"""The tooling contract: `make test` lints and type-checks before pytest; the strict mypy override
matches mypy's own --strict; dependencies are pinned where they belong (test oracle in dev only)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.paths import ROOT

STRICT_MODULES = {"wire", "wire.*", "infra", "infra.*", "copying", "copying.*", "polymarket_client",
                  "smart_pricing", "crypto", "models"}
NOT_RUNTIME = ("tests", "bench", ".venv", ".git", "migrations", "scripts")


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, names normalised."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_strict_override_is_mypys_strict() -> None:
    """The per-module flags equal what `mypy --strict` turns on (global-only ones set globally)."""
    from mypy.main import process_options
    from mypy.options import PER_MODULE_OPTIONS

    _, default = process_options(["--config-file=", "x.py"])
    _, strict = process_options(["--config-file=", "--strict", "x.py"])
    names = [k for k in dir(strict) if not k.startswith("_") and not callable(getattr(strict, k))]
    changed = {k for k in names if getattr(strict, k) != getattr(default, k)}
    assert changed, "mypy --strict changed nothing?"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    [override] = [o for o in config["overrides"] if "wire.*" in o["module"]]
    assert set(override["module"]) == STRICT_MODULES
    flags = {k: v for k, v in override.items() if k != "module"}
    assert flags == {k: getattr(strict, k) for k in changed if k in PER_MODULE_OPTIONS}
    for k in changed - set(PER_MODULE_OPTIONS):  # global-only strict flags
        assert config.get(k) == getattr(strict, k), k


def test_make_test_runs_ruff_and_mypy_before_pytest() -> None:
    """`make -n test`: ruff check ., then mypy ., then pytest (a finding stops the recipe)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, check=True,  # noqa: S607
                          capture_output=True, text=True).stdout.splitlines()
    steps = [i for i, line in enumerate(plan) for tool in ("ruff check .", "mypy .", "-m pytest")
             if tool in line]
    lines = [plan[i] for i in steps]
    assert len(lines) == 3 and "ruff check ." in lines[0] and "mypy ." in lines[1] and "pytest" in lines[2], plan
    lint = subprocess.run(["make", "-n", "lint"], cwd=ROOT, check=True,  # noqa: S607
                          capture_output=True, text=True).stdout
    assert "ruff check ." in lint and "mypy ." in lint and "pip install -q ruff" not in lint


def test_dev_tools_and_runtime_pins() -> None:
    """ruff/mypy/py-clob-client-v2 pinned in dev only, at the installed versions; prometheus-client
    pinned for run time."""
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    for name in ("ruff", "mypy", "py-clob-client-v2"):
        assert name not in runtime and dev.get(name) == version(name), name
    assert runtime["prometheus-client"] == version("prometheus-client")
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_no_runtime_module_imports_the_sdk() -> None:
    """py-clob-client-v2 is a test oracle: nothing outside tests/ and bench/ imports it."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in NOT_RUNTIME:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{rel}: {n}" for n in names if n.split(".")[0] == "py_clob_client_v2"]
    assert offenders == []
