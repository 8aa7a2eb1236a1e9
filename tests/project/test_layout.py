"""The project's own `tests` package wins over the stray one py-clob-client-v2 installs."""

from __future__ import annotations

from pathlib import Path

import tests
from tests.support.paths import ROOT


def test_tests_package_is_the_projects() -> None:
    """`import tests` resolves to this repository, not to site-packages/tests."""
    assert Path(tests.__file__).resolve().parent == ROOT / "tests"


def test_design_card_files_exist() -> None:
    """The design card's top-level files are all present."""
    for name in ("watcher.py", "executor.py", "admin", "polymarket_client.py", "smart_pricing.py",
                 "models.py", "crypto.py", "requirements.txt", ".env.example", "README.md"):
        assert (ROOT / name).exists(), name


def test_nothing_reads_or_points_outside_the_repository() -> None:
    """No code, test or doc refers to documents outside the repository (a user's clone has none):
    the Polymarket reference is docs/POLYMARKET.md, the design ARCHITECTURE.md."""
    import re
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    outside = re.compile("|".join([r"\.\./" + "shared", "/work/" + "shared",
                                   r"(?<![\w/.])(API|DESIGN|CONTRACT)\." + "md"]))
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".txt", ".toml", ".service", ".sh", "") or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if outside.search(line):
                offenders.append(f"{name}:{n}: {line.strip()[:80]}")
    assert offenders == []
