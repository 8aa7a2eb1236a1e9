"""Database fixtures: every DB test runs on SQLite and on the real PostgreSQL server.

PostgreSQL: one fresh database per test run (created at start, dropped at the end), migrated
once; tables are truncated after each test. Under CI=true an unreachable server fails the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from infra.db import driver_url, make_engine, make_sessionmaker
from infra.migrate import upgrade_to_head

PG_ADMIN_URL = os.environ.get("PMCT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def create_pg_database(prefix: str = "pmct_test") -> str:
    """Create a new empty PostgreSQL database; return its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(driver_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    """Drop a database created by create_pg_database."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(driver_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        eng = create_engine(driver_url(PG_ADMIN_URL), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def require_pg() -> None:
    """Skip (locally) or fail (CI=true) when PostgreSQL is unreachable."""
    reason = pg_available()
    if reason is None:
        return
    if _in_ci():
        pytest.fail(f"PostgreSQL unreachable under CI=true: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


@dataclass
class Database:
    """A migrated test database."""

    url: str
    engine: Engine
    factory: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def session(self) -> Session:
        """A new session (caller commits/closes)."""
        return self.factory()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run."""
    require_pg()
    url = create_pg_database()
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_pg_database(url)


def _empty_all(engine: Engine) -> None:
    """Delete every row (faster than TRUNCATE for the few rows a test writes)."""
    from models import Base

    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    """The migrated PostgreSQL database only (for features that need it, e.g. several executors)."""
    engine = make_engine(pg_url)
    try:
        yield Database(pg_url, engine, make_sessionmaker(engine))
    finally:
        _empty_all(engine)
        engine.dispose()


def _sqlite_copy(template: Path, tmp_path: Path) -> Iterator[Database]:
    target = tmp_path / "pmct.db"
    shutil.copyfile(template, target)
    url = f"sqlite:///{target}"
    engine = make_engine(url)
    try:
        yield Database(url, engine, make_sessionmaker(engine))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite file only (for tests that run the programs on one database file)."""
    yield from _sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield from _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        engine = make_engine(url)
        try:
            yield Database(url, engine, make_sessionmaker(engine))
        finally:
            _empty_all(engine)
            engine.dispose()
