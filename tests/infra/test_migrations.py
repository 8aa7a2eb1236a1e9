"""Migrations: up from empty on both databases, idempotent, and in sync with models.py."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from infra.db import make_engine
from infra.migrate import current_revision, head_revision, upgrade_to_head
from models import Base
from tests.support.dbfixtures import create_pg_database, drop_pg_database, require_pg


def _check_fresh_database(url: str) -> None:
    assert current_revision(url) is None
    assert upgrade_to_head(url) == head_revision()
    assert upgrade_to_head(url) == head_revision()  # idempotent
    assert current_revision(url) == head_revision()
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}),
                                    Base.metadata)
        assert diff == [], f"models.py and migrations disagree: {diff}"
    finally:
        engine.dispose()


def test_sqlite_upgrade_from_empty(tmp_path: Path) -> None:
    """An empty SQLite file migrates to head, twice without error, matching the models."""
    _check_fresh_database(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_postgres_upgrade_from_empty() -> None:
    """A new PostgreSQL database migrates to head, twice without error, matching the models."""
    require_pg()
    url = create_pg_database("pmct_migr")
    try:
        _check_fresh_database(url)
    finally:
        drop_pg_database(url)


def test_init_db_from_models_module(tmp_path: Path) -> None:
    """The seed README's `from models import init_db; init_db()` migrates the configured DB."""
    from models import init_db

    url = f"sqlite:///{tmp_path / 'seed.db'}"
    init_db(url)
    assert current_revision(url) == head_revision()
