"""The routing loop of each process: presence (stale agents go offline), first-response
targets (responses and breaches), priority re-evaluation of contacts whose attributes
changed, and a safety-net drain of the queue. Every step is safe to run in several processes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from wadesk.background import BackgroundLoop
from wadesk.config import Settings
from wadesk.db import Database, utcnow
from wadesk.routing import actions
from wadesk.routing import language as lang

log = structlog.get_logger(__name__)


class RoutingSweeper(BackgroundLoop):
    name = "routing"

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__()
        self.db = db
        self.settings = settings
        self.idle_seconds = settings.routing_sweep_seconds
        self._contacts_since: datetime = utcnow() - timedelta(
            seconds=settings.routing_sweep_seconds
        )
        self._warmed: tuple[str, ...] | None = None

    async def run_once(self) -> int:
        async with self.db.session() as session:
            config = await actions.load_config(session)
        languages = tuple(config.languages or [])
        if languages and languages != self._warmed:
            # lingua builds its models once per set of languages; not on the ingest path.
            await asyncio.to_thread(lang.warm, list(languages))
            self._warmed = languages
        async with self.db.session() as session:
            offline = await actions.sweep_presence(
                session, self.settings.routing_presence_timeout_seconds
            )
        async with self.db.session() as session:
            await actions.sweep_first_responses(session)
        started = utcnow()
        async with self.db.session() as session:
            await actions.sweep_contacts(session, self._contacts_since)
        self._contacts_since = started
        async with self.db.session() as session:
            assigned = await actions.drain(session, reason="sweep")
        if offline or assigned:
            log.info("routing.sweep", offline=offline, assigned=len(assigned))
        return 0


class RoutingDrainer(BackgroundLoop):
    """Drains the queue when a transaction of this process (or, through Redis, another)
    skipped its own drain because one was running (``actions.DRAIN_LATER``)."""

    name = "routing.drainer"
    idle_seconds = 3600.0  # only when woken; the sweeper above is the periodic safety net

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def run_once(self) -> int:
        async with self.db.session() as session:
            assigned = await actions.drain(session, reason="slot_freed")
        if assigned:
            log.debug("routing.drained", assigned=len(assigned))
        return 0
