"""Shared pytest fixtures (database on SQLite and PostgreSQL, throwaway keys).

`tests` is the project's package even though the dev-only test oracle py-clob-client-v2 (via
py-order-utils) installs a stray top-level `tests` into site-packages: pyproject's `pythonpath`
puts the repository first, and tests/test_layout.py asserts `import tests` resolves here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.dbfixtures import Database, database, pg_database, pg_url, sqlite_template  # noqa: F401

if TYPE_CHECKING:
    from crypto import KeyRing

# Public Hardhat/Anvil test account #0 and #1: known to everyone, never funded.
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TEST_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TEST_KEY_2 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
TEST_ADDRESS_2 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def fernet_key() -> str:
    """A throwaway Fernet key."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture
def keyring(fernet_key: str) -> KeyRing:
    """A KeyRing over a throwaway key."""
    from crypto import KeyRing

    return KeyRing(fernet_key)

from tests.conftest_sim import simulator, simulator_factory, simulator_process  # noqa: E402,F401
from tests.notify_support import discord_fake, telegram_fake  # noqa: E402,F401
from tests.webfixtures import web  # noqa: E402,F401
