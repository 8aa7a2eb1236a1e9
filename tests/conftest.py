"""Registers the shared fixtures for every test package under tests/ (they live in tests/support/).

`tests` is the project's package even though the dev-only test oracle py-clob-client-v2 (via
py-order-utils) installs a stray top-level `tests` into site-packages: pyproject's `pythonpath`
puts the repository first, and tests/project/test_layout.py asserts `import tests` resolves here.
"""

from __future__ import annotations

from tests.support.dbfixtures import (  # noqa: F401
    Database,
    database,
    pg_database,
    pg_url,
    sqlite_database,
    sqlite_template,
)
from tests.support.keys import fernet_key, keyring  # noqa: F401
from tests.support.notify_support import discord_fake, telegram_fake  # noqa: F401
from tests.support.rig import make_rig  # noqa: F401
from tests.support.simfixtures import simulator, simulator_factory, simulator_process  # noqa: F401
from tests.support.webfixtures import web  # noqa: F401
