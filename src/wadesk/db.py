"""Database engine, sessions, the declarative base, and the event hooks around commit.

SQLite (embedded default) and PostgreSQL are both first-class. On SQLite every transaction
starts with ``BEGIN IMMEDIATE`` and the in-process pool holds one connection, so writers queue
in asyncio instead of failing with "database is locked".

Events queued with ``queue_event`` are written in the same transaction, right before its commit.
On SQLite (one writer at a time) they go straight to the event log (table ``events``) with ids
from the one-row ``event_sequence`` counter. On PostgreSQL they go to ``events_staged`` and the
sequencer (``realtime/sequencer.py``) moves committed ones into the log a moment later, giving
ids in one short transaction per round: writers do not queue behind the counter's row lock
(docs/decisions/0030, 0031). After the commit they go to the registered hooks (runtime: bus,
Redis, wake-ups); on PostgreSQL without their ids, which the log gives them later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction
from sqlalchemy.types import TypeDecorator

from wadesk.bulk import bulk_insert
from wadesk.config import Settings, get_settings
from wadesk.pgarrays import use_array_in
from wadesk.pgcache import bound_long_statement_cache
from wadesk.realtime.bus import WAKE_UP_KINDS, Event

log = structlog.get_logger(__name__)

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
    # No pre-ping: a round trip on every checkout cost 6-7% of the server's CPU under a
    # webhook burst. After a database restart the first statement on a stale connection fails
    # (the webhook answers 503, a loop retries its round) and SQLAlchemy then discards every
    # older pooled connection at once (its optimistic disconnect handling);
    # bench/faults/db_outage.py checks that everything recovers by itself.
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_recycle=1800,
    )
    use_array_in(engine)
    bound_long_statement_cache(engine)
    return engine


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


AfterCommitHook = Callable[[list[Event]], None]


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
        event.listen(session_class, "before_commit", _write_events)
        event.listen(session_class, "after_commit", self._publish_after_commit)
        event.listen(session_class, "after_rollback", _drop_events)
        event.listen(session_class, "after_transaction_create", _mark_savepoint)
        event.listen(session_class, "after_transaction_end", _forget_savepoint)

    def on_after_commit(self, hook: AfterCommitHook) -> None:
        """Register a consumer of the events queued in a transaction (called after commit)."""
        self._hooks.append(hook)

    def _publish_after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: the events wait for the real commit
        events = session.info.pop("wadesk_events", None)
        if events:
            if any(not isinstance(e, Event) for e in events):
                # Queued during the commit's own final flush: too late for the log.
                log.warning("events.unlogged", kinds=sorted({e[0] for e in events}))
                events = [e if isinstance(e, Event) else Event(e[0], e[1]) for e in events]
            for hook in list(self._hooks):
                hook(events)

    async def warm_up(self) -> int:
        """PostgreSQL: open the pool's connections now; how many opened. A new connection
        costs its handshake and the driver's set-up (SQLAlchemy registers the JSON codecs,
        and asyncpg reads the catalog for them: ~5 ms of PostgreSQL's time each,
        docs/benchmarks.md): after a start, the first webhooks paid for up to a pool of them.
        A database that cannot be reached is not an error here: the loops retry anyway."""
        if self.is_sqlite:
            return 0
        opened = await asyncio.gather(
            *(self.engine.connect() for _ in range(self.settings.db_pool_size)),
            return_exceptions=True,
        )
        failures = [c for c in opened if isinstance(c, BaseException)]
        for connection in opened:
            if not isinstance(connection, BaseException):
                await connection.close()  # back to the pool, open
        if failures:
            log.warning("db.warm_up_failed", error=type(failures[0]).__name__)
        return len(opened) - len(failures)

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

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only. On PostgreSQL it runs without a transaction (autocommit:
        each statement sees what is committed when it starts), so a one-query read is one
        round trip instead of three (BEGIN, the query, COMMIT) — the event feed reads the log
        after every commit. On SQLite: an ordinary session (one connection, no round trips)."""
        if self.is_sqlite:
            async with self.session() as session:
                yield session
            return
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=autocommit) as session:
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def queue_event(session: AsyncSession | Session, kind: str, payload: dict[str, Any]) -> None:
    """Queue an event; it is delivered only if and after the session's transaction commits."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    sync.info.setdefault("wadesk_events", []).append((kind, payload))


def _drop_events(session: Session) -> None:
    savepoint = session.get_nested_transaction() if session.in_nested_transaction() else None
    if savepoint is None:
        session.info.pop("wadesk_events", None)
        return
    # A savepoint rolled back: only the events queued inside it go.
    mark = session.info.get("wadesk_savepoints", {}).get(savepoint)
    events = session.info.get("wadesk_events")
    if mark is not None and events is not None:
        del events[mark:]


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks = session.info.setdefault("wadesk_savepoints", {})
        marks[transaction] = len(session.info.get("wadesk_events", ()))


def _forget_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.get("wadesk_savepoints", {}).pop(transaction, None)


_NEXT_IDS = text("UPDATE event_sequence SET last = last + :n WHERE id = 1 RETURNING last")
# ("WHERE true": SQLite needs it to tell ON CONFLICT from a join's ON.)
CREATE_EVENT_COUNTER = text(
    "INSERT INTO event_sequence (id, last) SELECT 1, COALESCE(MAX(id), 0) FROM events"
    " WHERE true ON CONFLICT (id) DO NOTHING"
)


def _write_events(session: Session) -> None:
    """before_commit: write the transaction's events, last thing before COMMIT.

    SQLite: with their ids; the UPDATE locks the counter row until the commit is visible, so a
    concurrent writer gets the next ids only after these rows can be read: ids appear in order
    and without gaps. PostgreSQL: staged without ids and without a lock, for the sequencer.
    Wake-ups (``WAKE_UP_KINDS``) are not written: they only go to the after-commit hooks."""
    if session.in_nested_transaction():
        return  # a savepoint is released: the events wait for the real commit
    events = session.info.get("wadesk_events")
    if not events:
        return
    session.flush()  # the transaction's own writes first: hold the counter lock the least
    connection = session.connection()
    rows = _event_rows(events)
    logged = [row for row in rows if row["kind"] not in WAKE_UP_KINDS]
    if not logged or connection.dialect.name == "postgresql":
        if logged:
            connection.execute(*bulk_insert("postgresql", _staged_table(), logged))
        events[:] = [Event(row["kind"], row["payload"]) for row in rows]
        return
    n = len(logged)
    last = connection.execute(_NEXT_IDS, {"n": n}).scalar()
    if last is None:  # the row is missing (tables emptied, a partial restore): recreate it
        connection.execute(CREATE_EVENT_COUNTER)
        last = connection.execute(_NEXT_IDS, {"n": n}).scalar_one()
    for offset, row in enumerate(logged):
        row["id"] = int(last) - n + 1 + offset
    connection.execute(_events_table().insert(), logged)
    events[:] = [Event(row["kind"], row["payload"], row.get("id")) for row in rows]


def _event_rows(events: list[Any]) -> list[dict[str, Any]]:
    """Rows of the log for queued (kind, payload) pairs; payloads as plain JSON now (ids,
    strings, lists): what the log stores is what listeners get."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for kind, payload in events:
        clean: dict[str, Any] = orjson.loads(
            orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
        )
        rows.append(
            {
                "kind": kind,
                "inbox_id": _int_or_none(clean.get("inbox_id")),
                "conversation_id": _int_or_none(clean.get("conversation_id")),
                "payload": clean,
                "created_at": now,
            }
        )
    return rows


def _staged_table() -> Any:
    from wadesk.realtime.models import StagedEvent

    return StagedEvent.__table__


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _events_table() -> Any:
    from wadesk.realtime.models import EventRecord

    return EventRecord.__table__


def insert_for(dialect_name: str) -> Any:
    """The dialect's INSERT construct, which supports ON CONFLICT on both backends."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert
