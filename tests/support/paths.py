"""Where the repository and its test resources are (nothing outside the repository is read)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "tests" / "resources"
POLYMARKET = RESOURCES / "polymarket"  # vectors.json and fixtures/ (see resources/README.md)
FIXTURES = POLYMARKET / "fixtures"
