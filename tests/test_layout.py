"""The project's own `tests` package wins over the stray one py-clob-client-v2 installs."""

from __future__ import annotations

from pathlib import Path

import tests

ROOT = Path(__file__).resolve().parents[1]


def test_tests_package_is_the_projects() -> None:
    """`import tests` resolves to this repository, not to site-packages/tests."""
    assert Path(tests.__file__).resolve().parent == ROOT / "tests"


def test_design_card_files_exist() -> None:
    """The design card's top-level files are all present."""
    for name in ("watcher.py", "executor.py", "admin", "polymarket_client.py", "smart_pricing.py",
                 "models.py", "crypto.py", "requirements.txt", ".env.example", "README.md"):
        assert (ROOT / name).exists(), name
