"""Process stored webhook deliveries: parse, store messages and statuses, mark them done.

The same loop serves three needs: processing right after a delivery is stored (woken by the
writer), picking up what a crashed process left behind (on start-up), and a periodic sweep.
A batch is claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes share
the work and a process that dies releases its rows with its connection.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
import structlog
from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.background import BackgroundLoop
from wadesk.channels.base import InboundMessage, StatusUpdate
from wadesk.channels.whatsapp.parse import ParseError, parse_webhook
from wadesk.conversations.inbound import apply_parked_statuses, apply_statuses, store_inbound
from wadesk.db import Database, utcnow
from wadesk.inboxes.registry import InboxRegistry
from wadesk.ingest.models import WebhookDelivery
from wadesk.ingest.pressure import IngestPressure, PileUpWatch
from wadesk.metrics import (
    DELIVERIES_PROCESSED,
    MESSAGES_DUPLICATE,
    MESSAGES_RECEIVED,
    PROCESSING_LATENCY,
    STATUSES_APPLIED,
)
from wadesk.pgarrays import among

log = structlog.get_logger(__name__)

_DELIVERIES = cast(Table, WebhookDelivery.__table__)
# The claim and the mark-done of every round, built once (docs/benchmarks.md).
_PENDING = (
    select(
        _DELIVERIES.c.id,
        _DELIVERIES.c.channel_type,
        _DELIVERIES.c.body,
        _DELIVERIES.c.signature,
        _DELIVERIES.c.received_at,
    )
    # A literal, not a bound parameter: a prepared statement's generic plan must still see
    # that it matches the partial index of pending deliveries.
    .where(text("status = 'pending'"))
    .order_by(_DELIVERIES.c.id)
    .limit(bindparam("limit"))
)
_PENDING_LOCKED = _PENDING.with_for_update(skip_locked=True)
_PROCESSED = (
    update(_DELIVERIES)
    .where(among(_DELIVERIES.c.id))
    .values(
        status="processed",
        processed_at=bindparam("now"),
        attempts=_DELIVERIES.c.attempts + 1,
        error=None,
    )
)

# After a round parked statuses, the parked-status sweep follows every round for this long.
PARKED_SWEEP_SECONDS = 5.0

# Errors that say "this data cannot be stored", as opposed to "the database is unavailable".
DATA_ERRORS = (DataError, IntegrityError, ValueError, TypeError, KeyError)


@dataclass
class BatchOutcome:
    deliveries: int = 0
    messages: int = 0
    duplicates: int = 0
    statuses: int = 0
    parked: int = 0  # statuses whose message is not known yet
    unprocessable: int = 0
    media_pending: bool = False
    full: bool = False  # the last batch claimed was full: more may be waiting
    problems: dict[int, list[str]] = field(default_factory=dict)


class DeliveryProcessor(BackgroundLoop):
    name = "ingest.processor"

    def __init__(
        self,
        db: Database,
        registry: InboxRegistry,
        *,
        batch_size: int = 200,
        sweep_seconds: float = 30.0,
        watch: PileUpWatch | None = None,
    ) -> None:
        super().__init__()
        self.watch = watch or PileUpWatch(db, IngestPressure())
        self._last_batch_at = 0.0
        self._behind = False  # the last batch was full: a backlog
        self._db = db
        self._registry = registry
        self._batch_size = batch_size
        # Idle, it sweeps for deliveries another (crashed) process left behind.
        self.idle_seconds = sweep_seconds
        self.on_media_pending: list[Any] = []
        self._sweep_parked_until = time.monotonic() + PARKED_SWEEP_SECONDS  # a restart

    async def run_once(self) -> int:
        """Everything pending now; parked statuses whose message has appeared when this looks
        idle or parked some lately. Returns 0 unless a full batch suggests more is waiting: a
        delivery stored during the round wakes the loop anyway, so an extra round that finds
        nothing (two statements and a commit per webhook at a low rate) is not needed."""
        outcome = await self.process_available()
        if outcome.parked:
            self._sweep_parked_until = time.monotonic() + PARKED_SWEEP_SECONDS
            self.recheck_soon(1.0)
        if outcome.deliveries == 0 or time.monotonic() < self._sweep_parked_until:
            # The send recorder applies the statuses parked for the sends it records
            # (apply_parked_for); this sweep is for those that raced it, and after a restart.
            async with self._db.session() as session:
                await apply_parked_statuses(session)
        return outcome.deliveries if outcome.full else 0

    async def process_available(self) -> BatchOutcome:
        """Batches until one is not full (what other processes hold locked is theirs)."""
        total = BatchOutcome()
        while True:
            if self._behind:  # while webhooks pile up: one batch per deferral (ADR 0006)
                await self.watch.step_aside("ingest", self._last_batch_at, lambda: self._stopping)
            self._last_batch_at = time.monotonic()
            outcome = await self.process_batch()
            self._behind = outcome.deliveries >= self._batch_size
            total.deliveries += outcome.deliveries
            total.messages += outcome.messages
            total.duplicates += outcome.duplicates
            total.statuses += outcome.statuses
            total.parked += outcome.parked
            total.unprocessable += outcome.unprocessable
            total.problems.update(outcome.problems)
            total.full = outcome.deliveries >= self._batch_size
            if not total.full:
                return total

    async def process_batch(self) -> BatchOutcome:
        outcome = BatchOutcome()
        async with self._db.session() as session:
            query = _PENDING if self._db.is_sqlite else _PENDING_LOCKED
            rows = (await session.execute(query, {"limit": self._batch_size})).tuples()
            deliveries = [StoredDelivery(*row) for row in rows]
            if not deliveries:
                return outcome
            outcome.deliveries = len(deliveries)
            try:
                await self._in_savepoint(session, deliveries, outcome)
            except DATA_ERRORS:
                # Something in the batch cannot be stored: find it by going one by one.
                for delivery in deliveries:
                    try:
                        await self._in_savepoint(session, [delivery], outcome)
                    except DATA_ERRORS as exc:
                        log.warning("ingest.delivery_unstorable", delivery_id=delivery.id)
                        outcome.problems[delivery.id] = [f"cannot be stored: {type(exc).__name__}"]
            await _mark_done(session, deliveries, outcome.problems)
            outcome.unprocessable = len(outcome.problems)
        DELIVERIES_PROCESSED.labels("processed").inc(outcome.deliveries - outcome.unprocessable)
        DELIVERIES_PROCESSED.labels("unprocessable").inc(outcome.unprocessable)
        MESSAGES_RECEIVED.inc(outcome.messages)
        MESSAGES_DUPLICATE.inc(outcome.duplicates)
        STATUSES_APPLIED.inc(outcome.statuses)
        if outcome.media_pending:
            for callback in self.on_media_pending:
                callback()
        return outcome

    async def _in_savepoint(
        self, session: AsyncSession, deliveries: list[StoredDelivery], outcome: BatchOutcome
    ) -> None:
        events: list[Any] = session.sync_session.info.setdefault("wadesk_events", [])
        mark = len(events)
        part = BatchOutcome()
        try:
            async with session.begin_nested():
                await self._process(session, deliveries, part)
        except BaseException:
            del events[mark:]  # events of a rolled-back savepoint must never be published
            raise
        outcome.messages += part.messages
        outcome.duplicates += part.duplicates
        outcome.statuses += part.statuses
        outcome.parked += part.parked
        outcome.media_pending = outcome.media_pending or part.media_pending
        outcome.problems.update(part.problems)

    async def _process(
        self, session: AsyncSession, deliveries: list[StoredDelivery], outcome: BatchOutcome
    ) -> None:
        inbound: dict[int, list[InboundMessage]] = defaultdict(list)
        statuses: dict[int, list[StatusUpdate]] = defaultdict(list)
        for delivery in deliveries:
            problems: list[str] = []
            try:
                body = orjson.loads(delivery.body)
                result = parse_webhook(body)
                problems.extend(result.problems)
                for message in result.delivery.messages:
                    inbox_id = await self._route(session, delivery, message.account_id, problems)
                    if inbox_id is not None:
                        inbound[inbox_id].append(message)
                for status in result.delivery.statuses:
                    inbox_id = await self._route(session, delivery, status.account_id, problems)
                    if inbox_id is not None:
                        statuses[inbox_id].append(status)
            except orjson.JSONDecodeError:
                problems.append("body is not JSON")
            except ParseError as exc:
                problems.append(str(exc))
            if problems:
                outcome.problems[delivery.id] = sorted(set(problems))
        for inbox_id in sorted(inbound):
            stored = await store_inbound(session, inbox_id, inbound[inbox_id])
            outcome.messages += stored.created
            outcome.duplicates += stored.duplicates
            if stored.created and any(m.media for m in inbound[inbox_id]):
                outcome.media_pending = True
        for inbox_id in sorted(statuses):
            applied = await apply_statuses(session, inbox_id, statuses[inbox_id])
            outcome.statuses += applied.statuses_applied
            outcome.parked += applied.statuses_pending

    async def _route(
        self,
        session: AsyncSession,
        delivery: StoredDelivery,
        account_id: str,
        problems: list[str],
    ) -> int | None:
        """The inbox of an event, if the inbox's own app secret signed the delivery."""
        inbox = await self._registry.by_account(delivery.channel_type, account_id, session)
        if inbox is None:
            self._registry.invalidate()
            inbox = await self._registry.by_account(delivery.channel_type, account_id, session)
        if inbox is None:
            problems.append(f"no inbox for account {account_id!r}")
            return None
        if not _signed_by(delivery, inbox.app_secret):
            problems.append(f"account {account_id!r} is not signed with its inbox's app secret")
            return None
        return inbox.id


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """What processing needs of a stored delivery (read with Core: no ORM identity map)."""

    id: int
    channel_type: str
    body: bytes
    signature: str | None
    received_at: datetime


async def _mark_done(
    session: AsyncSession, deliveries: list[StoredDelivery], problems: dict[int, list[str]]
) -> None:
    now = utcnow()
    processed = [d.id for d in deliveries if d.id not in problems]
    if processed:
        await session.execute(_PROCESSED, {"ids": processed, "now": now})
    unprocessable = [
        {"did": d.id, "error": "\n".join(problems[d.id])[:4000]}
        for d in deliveries
        if d.id in problems
    ]
    if unprocessable:
        await session.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id == bindparam("did"))
            .values(
                status="unprocessable",
                processed_at=now,
                attempts=_DELIVERIES.c.attempts + 1,
                error=bindparam("error"),
            ),
            unprocessable,
        )
    for delivery in deliveries:
        PROCESSING_LATENCY.observe((now - delivery.received_at).total_seconds())


def _signed_by(delivery: StoredDelivery, app_secret: str) -> bool:
    if delivery.signature is None:  # stored by an admin replay or import: trusted
        return True
    expected = "sha256=" + hmac.new(app_secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, delivery.signature.strip().lower())
