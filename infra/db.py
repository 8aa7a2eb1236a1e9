"""Engine, sessions, column types and dialect switches shared by every component.

Invariants: money columns round-trip `Decimal` exactly on both databases (NUMERIC on
PostgreSQL, canonical text on SQLite, which has no exact decimal type; what fits is in
`infra.decimals`); datetime columns only accept timezone-aware values and always return
UTC-aware ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Engine, String, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import FromClause, Insert, TableClause
from sqlalchemy.types import TypeDecorator, TypeEngine

from infra.decimals import DECIMAL_PRECISION, DECIMAL_SCALE, canonical_decimal


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class DecimalType(TypeDecorator[Decimal]):
    """Exact decimal: NUMERIC(DECIMAL_PRECISION, DECIMAL_SCALE) on PostgreSQL, text on SQLite."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """NUMERIC on PostgreSQL, text elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.NUMERIC(DECIMAL_PRECISION, DECIMAL_SCALE))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: object, dialect: Dialect) -> Decimal | str | None:
        """Accept Decimal/int/str; refuse float (it is never exact)."""
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money and prices must be Decimal, not float")
        dec = value if isinstance(value, Decimal) else Decimal(str(value))
        if dialect.name == "postgresql":
            return dec
        return canonical_decimal(dec)

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        """Always a normalised Decimal (no trailing zeros from NUMERIC scale)."""
        if value is None:
            return None
        return Decimal(canonical_decimal(Decimal(str(value)) if not isinstance(value, Decimal) else value))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; naive values are refused on write."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; refuse naive datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use timezone-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to values read back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def is_sqlite_url(url: str) -> bool:
    """True for a SQLite SQLAlchemy URL."""
    return url.startswith("sqlite")


def driver_url(url: str) -> str:
    """`url` with the psycopg2 driver made explicit for plain postgresql:// URLs.

    SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; PMCT ships psycopg2-binary.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine with the pragmas PMCT relies on (SQLite: WAL, foreign keys, busy timeout)."""
    url = driver_url(url)
    if is_sqlite_url(url):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory that keeps loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert_ignore(table: FromClause, dialect_name: str) -> Insert:
    """An INSERT that silently skips rows conflicting with a unique constraint."""
    if not isinstance(table, TableClause):  # a model's `__table__` is typed FromClause
        raise TypeError(f"insert_ignore needs a table, got {type(table).__name__}")
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
