"""Database engine, sessions, the declarative base, and the after-commit event hook.

SQLite (embedded default) and PostgreSQL are both first-class. On SQLite every transaction
starts with ``BEGIN IMMEDIATE`` and the in-process pool holds one connection, so writers queue
in asyncio instead of failing with "database is locked".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from wadesk.config import Settings, get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite needs INTEGER PRIMARY KEY for rowid aliasing.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in code, UTC in the database on both dialects."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args={"timeout": 30}
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


AfterCommitHook = Callable[[list[tuple[str, dict[str, Any]]]], None]


class Database:
    """Holds the engine and session factory of one process, and who hears its commits."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.engine = create_engine(self.settings)
        # A Session class of our own, so that commit hooks hear only this database's sessions.
        session_class = type("WadeskSession", (Session,), {})
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=session_class
        )
        self._hooks: list[AfterCommitHook] = []
        event.listen(session_class, "after_commit", self._publish_after_commit)
        event.listen(session_class, "after_rollback", _drop_events)

    def on_after_commit(self, hook: AfterCommitHook) -> None:
        """Register a consumer of the events queued in a transaction (called after commit)."""
        self._hooks.append(hook)

    def _publish_after_commit(self, session: Session) -> None:
        events = session.info.pop("wadesk_events", None)
        if events:
            for hook in list(self._hooks):
                hook(events)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits at the end, rolls back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()


def queue_event(session: AsyncSession | Session, kind: str, payload: dict[str, Any]) -> None:
    """Queue an event; it is delivered only if and after the session's transaction commits."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    sync.info.setdefault("wadesk_events", []).append((kind, payload))


def _drop_events(session: Session) -> None:
    session.info.pop("wadesk_events", None)


def insert_for(dialect_name: str) -> Any:
    """The dialect's INSERT construct, which supports ON CONFLICT on both backends."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert
