"""Everything one process holds: database, caches, the ingest pipeline and background workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from sqlalchemy import text

from wadesk.audit.chainer import AuditChainer
from wadesk.automation.waiting import WaitingSweeper
from wadesk.automation.worker import AutomationWorker
from wadesk.config import Settings
from wadesk.db import Database
from wadesk.httpclient import HttpClient
from wadesk.inboxes.registry import InboxRegistry
from wadesk.ingest.pressure import IngestPressure, PileUpWatch
from wadesk.ingest.processor import DeliveryProcessor
from wadesk.ingest.writer import DeliveryWriter
from wadesk.media.fetcher import MediaFetcher
from wadesk.media.store import LocalMediaStore
from wadesk.outbox.worker import OutboxWorker
from wadesk.realtime.bus import WAKE_UP_KINDS, Event, bus
from wadesk.realtime.feed import EventFeed
from wadesk.realtime.redis_bridge import RedisBridge
from wadesk.realtime.retention import EventRetention
from wadesk.realtime.sequencer import EventSequencer
from wadesk.routing.actions import DRAIN_LATER
from wadesk.routing.sweeper import RoutingDrainer, RoutingSweeper

log = structlog.get_logger(__name__)


async def check_autovacuum(db: Database) -> None:
    """Say so once when PostgreSQL runs without autovacuum: the queue tables (deliveries,
    staged events, the outbox) then keep every dead row, and the planner the statistics
    of empty tables, and wadesk slows down as its tables grow."""
    try:
        async with db.session() as session:
            setting = await session.scalar(text("SHOW autovacuum"))
    except Exception:  # the database is away: /readyz says so
        return
    if setting != "on":
        log.warning(
            "database.autovacuum_off",
            advice="turn autovacuum on (PostgreSQL's default), or VACUUM ANALYZE regularly",
        )


def freeze_startup_objects() -> None:
    """Collect, then keep what start-up left alive out of the cyclic collector's full
    passes (``gc.freeze``). Objects created later are collected as usual; a frozen one is
    still freed when its last reference goes. For a process that serves until it exits."""
    gc.collect()
    gc.freeze()


class Runtime:
    def __init__(self, settings: Settings, *, run_workers: bool = True) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.http = HttpClient(timeout=settings.graph_timeout_seconds, max_connections=200)
        self.registry = InboxRegistry(self.db)
        self.ingest_pressure = IngestPressure()
        # Webhooks piling up here or elsewhere: processing and sequencing step aside (ADR 0006).
        self.pile_up = PileUpWatch(self.db, self.ingest_pressure)
        self.processor = DeliveryProcessor(
            self.db,
            self.registry,
            batch_size=settings.ingest_batch_size,
            sweep_seconds=settings.ingest_sweep_seconds,
            watch=self.pile_up,
        )
        self.writer = DeliveryWriter(
            self.db, on_stored=self.processor.wake, pressure=self.ingest_pressure
        )
        self.media_store = LocalMediaStore(settings.resolved_media_dir)
        self.media = MediaFetcher(self.db, settings, self.http, self.media_store)
        self.outbox = OutboxWorker(self.db, settings, self.http)
        self.automation = AutomationWorker(self.db, settings, self.http)
        self.processor.on_media_pending.append(self.media.wake)
        self.run_workers = run_workers
        # Extra consumers of committed events (e.g. the embedded simulator's inbox sync).
        # They receive list[Event]; Event unpacks as (kind, payload), hence list[Any] here.
        self.listeners: list[Callable[[list[Any]], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.bridge = (
            RedisBridge(settings.redis_url, on_remote=self._dispatch)
            if settings.redis_url
            else None
        )
        # The event log's tail for this process's SSE streams, and its retention.
        self.events = EventFeed(self.db)
        self.event_retention = EventRetention(
            self.db, retention_hours=settings.event_retention_hours
        )
        # PostgreSQL: gives committed events their ids in the log (one process at a time).
        self.sequencer = EventSequencer(
            self.db, on_sequenced=self._on_sequenced, watch=self.pile_up
        )
        self.routing = RoutingSweeper(self.db, settings)  # presence, first responses, queue
        self.drainer = RoutingDrainer(self.db)  # drains skipped by busy requests
        # Conversations waiting too long for a reply -> "waiting" automation jobs (one process).
        self.waiting = WaitingSweeper(self.db, settings)
        # Links committed audit rows into the hash chain (PostgreSQL; one process at a time).
        self.audit_chainer = AuditChainer(self.db, settings.resolved_secret_key())
        self.db.on_after_commit(self._after_commit)

    def _after_commit(self, events: list[Event]) -> None:
        self._dispatch(events)
        if self.bridge is not None:
            self.bridge.publish(events)

    def _on_sequenced(self) -> None:
        """New events are in the log: this process's feed reads them, and (an empty publish)
        so do the other processes' feeds."""
        self.events.wake()
        if self.bridge is not None:
            self.bridge.publish([])

    def _dispatch(self, events: list[Event]) -> None:
        """React to committed events, this process's own or (through Redis) another's."""
        if not self.db.is_sqlite and any(e[0] not in WAKE_UP_KINDS for e in events):
            self.sequencer.wake()
        for kind, _payload in events:
            if kind == "outbox.queued":
                self.outbox.wake()
            elif kind == "ingest.replayed":
                self.processor.wake()
            elif kind == DRAIN_LATER:
                self.drainer.wake()
            elif kind.startswith("inbox."):
                self.registry.invalidate()
            elif kind.startswith("automation."):
                self.automation.on_event(kind, _payload)
        self.events.wake()
        bus.publish_many(events)
        for listener in self.listeners:
            listener(events)

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work that stops with the runtime."""
        self._tasks = [t for t in self._tasks if not t.done()]
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)

    async def start(self) -> None:
        """Start background work; unprocessed deliveries of a crashed process are picked up."""
        if self.settings.db_warm_up:
            await self.db.warm_up()
        self.spawn("ingest", self.processor.run_forever())
        self.spawn("media", self.media.run_forever())
        if self.run_workers:
            self.spawn("outbox", self.outbox.run_forever())
            self.spawn("automation", self.automation.run_forever())
        if self.bridge is not None:
            self.spawn("redis-subscriber", self.bridge.run_subscriber())
        self.spawn("event-feed", self.events.run_forever())
        self.spawn("event-retention", self.event_retention.run_forever())
        self.spawn("routing", self.routing.run_forever())
        self.spawn("routing-drainer", self.drainer.run_forever())
        self.spawn("automation-waiting", self.waiting.run_forever())
        if not self.db.is_sqlite:
            self.spawn("database-check", check_autovacuum(self.db))
            self.spawn("audit-chainer", self.audit_chainer.run_forever())
            self.spawn("event-sequencer", self.sequencer.run_forever())
        log.info("runtime.started", workers=self.run_workers)

    async def stop(self) -> None:
        """Graceful: the outbox finishes what it claimed and the ingest processor its batch;
        the rest stops and resumes later. Sends still claimed after the wait are handed back."""
        self.outbox.stop()
        self.processor.stop()
        self.events.stop()  # SSE streams end
        graceful = {"outbox": 20.0, "ingest": 5.0}
        outbox_done = True
        for task in self._tasks:
            if task.get_name() in graceful:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(task), graceful[task.get_name()])
                outbox_done = outbox_done and (task.get_name() != "outbox" or task.done())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if not outbox_done:
            await self._release_claims()
        await self.close()

    async def _release_claims(self) -> None:
        """Rows this process claimed but did not send are due again now, not after the lease.
        A send cut off while its request was out may have reached Meta: it waits for its
        status as any unanswered send does (outbox/tracking.py)."""
        from datetime import timedelta

        from sqlalchemy import update

        from wadesk.db import utcnow
        from wadesk.outbox.models import OutboxItem

        cut_off = sorted(self.outbox.in_flight)
        now = utcnow()
        wait = timedelta(seconds=self.settings.outbox_unanswered_wait_seconds)
        claimed = (OutboxItem.state == "pending", OutboxItem.lease_owner == self.outbox.owner)
        with contextlib.suppress(Exception):
            async with self.db.session() as session:
                await session.execute(
                    update(OutboxItem)
                    .where(*claimed, OutboxItem.id.not_in(cut_off))
                    .values(lease_owner=None, next_attempt_at=now, attempts=OutboxItem.attempts - 1)
                )
                if cut_off:
                    await session.execute(
                        update(OutboxItem)
                        .where(*claimed, OutboxItem.id.in_(cut_off))
                        .values(
                            lease_owner=None,
                            next_attempt_at=now + wait,
                            last_error="cut off by a shutdown: may have been sent",
                        )
                    )
            log.warning("runtime.claims_released", owner=self.outbox.owner, cut_off=cut_off)

    async def close(self) -> None:
        """Release connections (for a runtime whose background work was never started)."""
        if self.bridge is not None:
            await self.bridge.aclose()
        await self.http.aclose()
        await self.writer.close()
        await self.db.dispose()
