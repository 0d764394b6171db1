"""Everything one process holds: database, caches, the ingest pipeline and background workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import structlog

from wadesk.config import Settings
from wadesk.db import Database
from wadesk.inboxes.registry import InboxRegistry
from wadesk.ingest.processor import DeliveryProcessor
from wadesk.ingest.writer import DeliveryWriter
from wadesk.media.fetcher import MediaFetcher
from wadesk.media.store import LocalMediaStore
from wadesk.outbox.worker import OutboxWorker
from wadesk.realtime.bus import Event, bus
from wadesk.realtime.redis_bridge import RedisBridge

log = structlog.get_logger(__name__)


class Runtime:
    def __init__(self, settings: Settings, *, run_workers: bool = True) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.http = httpx.AsyncClient(
            timeout=settings.graph_timeout_seconds,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self.registry = InboxRegistry(self.db)
        self.processor = DeliveryProcessor(
            self.db,
            self.registry,
            batch_size=settings.ingest_batch_size,
            sweep_seconds=settings.ingest_sweep_seconds,
        )
        self.writer = DeliveryWriter(self.db, on_stored=self.processor.wake)
        self.media_store = LocalMediaStore(settings.resolved_media_dir)
        self.media = MediaFetcher(self.db, settings, self.http, self.media_store)
        self.outbox = OutboxWorker(self.db, settings, self.http)
        self.processor.on_media_pending.append(self.media.wake)
        self.run_workers = run_workers
        # Extra consumers of committed events (e.g. the embedded simulator's inbox sync).
        self.listeners: list[Callable[[list[Event]], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.bridge = (
            RedisBridge(settings.redis_url, on_remote=self._dispatch)
            if settings.redis_url
            else None
        )
        self.db.on_after_commit(self._after_commit)

    def _after_commit(self, events: list[Event]) -> None:
        self._dispatch(events)
        if self.bridge is not None:
            self.bridge.publish(events)

    def _dispatch(self, events: list[Event]) -> None:
        """React to committed events, this process's own or (through Redis) another's."""
        for kind, _payload in events:
            if kind == "outbox.queued":
                self.outbox.wake()
            elif kind == "ingest.replayed":
                self.processor.wake()
            elif kind.startswith("inbox."):
                self.registry.invalidate()
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
        self.spawn("ingest", self.processor.run_forever())
        self.spawn("media", self.media.run_forever())
        if self.run_workers:
            self.spawn("outbox", self.outbox.run_forever())
        if self.bridge is not None:
            self.spawn("redis-subscriber", self.bridge.run_subscriber())
        log.info("runtime.started", workers=self.run_workers)

    async def stop(self) -> None:
        """Graceful: the outbox finishes what it claimed; the rest stops and resumes later."""
        self.outbox.stop()
        for task in self._tasks:
            if task.get_name() == "outbox":
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(task), timeout=20)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.close()

    async def close(self) -> None:
        """Release connections (for a runtime whose background work was never started)."""
        if self.bridge is not None:
            await self.bridge.aclose()
        await self.http.aclose()
        await self.db.dispose()
