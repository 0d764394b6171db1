"""Send queued messages: claim, pace, send, record. Several workers may run at once.

- Claiming pushes a row's due time forward by a lease and commits before anything is sent;
  on PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so two workers never take one row.
  A worker that dies leaves its rows to come due again after the lease.
- Messages to one recipient go out in order: a recipient's rows are taken only from the
  oldest pending one, and a row waiting for a retry holds back the ones behind it.
- Transient errors are retried with exponential backoff and jitter; permanent ones fail the
  message with a reason a person understands.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import structlog
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.background import BackgroundLoop
from wadesk.channels.base import ChannelSendError, OutboundMessage
from wadesk.channels.whatsapp.client import WhatsAppClient
from wadesk.channels.whatsapp.errors import human_reason
from wadesk.claims import lease_update
from wadesk.config import Settings
from wadesk.conversations.events import queue_message_updated
from wadesk.conversations.models import Message
from wadesk.db import Database, queue_event, utcnow
from wadesk.httpclient import HttpClient
from wadesk.inboxes.models import Inbox
from wadesk.media.store import LocalMediaStore
from wadesk.metrics import MESSAGES_FAILED, MESSAGES_SENT, OUTBOX_DEPTH, SEND_RETRIES
from wadesk.outbox.models import OutboxItem
from wadesk.outbox.pacing import Pacer
from wadesk.outbox.recorder import Sent, SentRecorder
from wadesk.outbox.tracking import tracking_for
from wadesk.pgarrays import among

log = structlog.get_logger(__name__)

PAIR_LIMIT_BACKOFF_SECONDS = 6.0
DEPTH_EVERY_SECONDS = 1.0
RECHECK_SECONDS = 0.05

# The claim's statements, built once (building one and its cache key cost about as much
# client CPU as running it).
_DUE = (
    select(OutboxItem.id, OutboxItem.inbox_id, OutboxItem.recipient)
    # Literal state: the generic plan must match the partial index of due rows.
    .where(text("outbox.state = 'pending'"), OutboxItem.next_attempt_at <= bindparam("now"))
    .order_by(OutboxItem.id)
    .limit(bindparam("limit"))
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
# Every pending row of the candidates' recipients, due or not, up to the last candidate.
_PENDING = (
    select(OutboxItem.inbox_id, OutboxItem.recipient, OutboxItem.id)
    .where(
        OutboxItem.state == "pending",
        among(OutboxItem.recipient, "recipients"),
        OutboxItem.id <= bindparam("last"),
    )
    .order_by(OutboxItem.id)
)
_LEASE = (
    lease_update(OutboxItem)
    .values(updated_at=bindparam("now"))
    .returning(
        OutboxItem.id,
        OutboxItem.message_id,
        OutboxItem.inbox_id,
        OutboxItem.recipient,
        OutboxItem.attempts,
    )
)
_MESSAGES = select(Message).where(among(Message.id))
_INBOXES = select(Inbox).where(among(Inbox.id))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What sending needs of a claimed row's message, read in the claim's transaction."""

    outbound: OutboundMessage
    to_upload: tuple[str, str, str] | None  # (media key, mime, file name): upload first


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    message_id: int
    inbox_id: int
    recipient: str
    attempts: int
    outgoing: Outgoing | None = None  # None: the message is gone


@dataclass(frozen=True, slots=True)
class InboxSendConfig:
    client: WhatsAppClient
    rate: float
    pair_rate: float
    pair_burst: int


def backoff_seconds(
    attempts: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Exponential backoff with jitter (between half and all of base * 2^(attempts-1)),
    at least what the provider asked for."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 20))
    return max(retry_after or 0.0, random.uniform(ceiling / 2, ceiling))


class OutboxWorker(BackgroundLoop):
    name = "outbox.worker"

    def __init__(self, db: Database, settings: Settings, http: HttpClient) -> None:
        super().__init__()
        self._db = db
        self._settings = settings
        self._http = http
        self._pacer = Pacer()
        self.idle_seconds = settings.outbox_poll_seconds
        self.owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._store = LocalMediaStore(settings.resolved_media_dir)
        self._recorder = SentRecorder(db)
        self._depth_counted_at = -DEPTH_EVERY_SECONDS
        # Outbox ids whose request is out without an answer yet: cut off, they may have gone.
        self.in_flight: set[int] = set()

    async def run_once(self) -> int:
        """Claim one batch and send it. Returns the number of rows handled, or 0 after a
        partial batch: a row queued meanwhile woke the loop anyway, and one queued by another
        process is looked for within ``RECHECK_SECONDS`` (an empty claim round right after
        every send made ~4 claims per message)."""
        claimed, configs = await self._claim()
        if not claimed:
            return 0
        groups: dict[tuple[int, str], list[Claimed]] = defaultdict(list)
        for item in claimed:
            groups[(item.inbox_id, item.recipient)].append(item)
        await asyncio.gather(
            *(self._send_group(items, configs[items[0].inbox_id]) for items in groups.values())
        )
        if len(claimed) >= self._settings.outbox_batch_size:
            return len(claimed)
        self.recheck_soon(RECHECK_SECONDS)
        return 0

    async def _claim(self) -> tuple[list[Claimed], dict[int, InboxSendConfig]]:
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.outbox_lease_seconds)
        async with self._db.session() as session:
            due = _DUE if self._db.is_sqlite else _DUE_LOCKED
            limit = self._settings.outbox_batch_size
            candidates = (await session.execute(due, {"now": now, "limit": limit})).tuples().all()
            await self._update_depth(session)
            if not candidates:
                return [], {}
            # Only a recipient's oldest pending rows, without a gap: order is kept per recipient.
            ids = _in_order(candidates, await self._pending_ids(session, candidates))
            if not ids:
                return [], {}
            values = {"ids": ids, "lease": lease, "owner": self.owner, "now": now}
            rows = (await session.execute(_LEASE, values)).tuples().all()
            message_ids = [row[1] for row in rows]
            messages = {m.id: m for m in (await session.scalars(_MESSAGES, {"ids": message_ids}))}
            claimed = sorted(
                (Claimed(*row, outgoing=_outgoing(messages.get(row[1]), row[3])) for row in rows),
                key=lambda c: c.id,
            )
            inbox_ids = sorted({c.inbox_id for c in claimed})
            inboxes = (await session.scalars(_INBOXES, {"ids": inbox_ids})).all()
            configs = {inbox.id: self._config_for(inbox) for inbox in inboxes}
        return claimed, configs

    async def _pending_ids(
        self, session: AsyncSession, candidates: Sequence[tuple[int, int, str]]
    ) -> dict[tuple[int, str], list[int]]:
        recipients = sorted({r for _, _, r in candidates})
        last = max(cid for cid, _, _ in candidates)
        rows = await session.execute(_PENDING, {"recipients": recipients, "last": last})
        pending: dict[tuple[int, str], list[int]] = defaultdict(list)
        for inbox_id, recipient, cid in rows.tuples():
            pending[(int(inbox_id), str(recipient))].append(int(cid))
        return pending

    async def _update_depth(self, session: AsyncSession) -> None:
        """The outbox-depth gauge, counted at most once a second (a count per claim was a
        tenth of the outbox's statements)."""
        now = time.monotonic()
        if now - self._depth_counted_at < DEPTH_EVERY_SECONDS:
            return
        self._depth_counted_at = now
        depth = await session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "pending")
        )
        OUTBOX_DEPTH.set(depth or 0)

    def _config_for(self, inbox: Inbox) -> InboxSendConfig:
        settings = self._settings
        client = WhatsAppClient(
            http=self._http,
            graph_url=inbox.graph_url,
            api_version=inbox.api_version,
            phone_number_id=inbox.external_account_id,
            access_token=inbox.access_token,
            business_account_id=inbox.business_account_id,
        )
        return InboxSendConfig(
            client=client,
            rate=inbox.send_rate_per_s or settings.send_rate_per_number,
            pair_rate=inbox.pair_rate_per_s or settings.pair_rate_per_s,
            pair_burst=inbox.pair_burst or settings.pair_burst,
        )

    async def _send_group(self, items: list[Claimed], config: InboxSendConfig) -> None:
        for index, item in enumerate(items):
            delay = self._pacer.delay(
                item.inbox_id,
                item.recipient,
                rate=config.rate,
                pair_rate=config.pair_rate,
                pair_burst=config.pair_burst,
            )
            while 0 < delay <= 1.0:
                await asyncio.sleep(delay)
                delay = self._pacer.delay(
                    item.inbox_id,
                    item.recipient,
                    rate=config.rate,
                    pair_rate=config.pair_rate,
                    pair_burst=config.pair_burst,
                )
            if delay > 0:
                # Queue, don't fail: this recipient's rows come due again when the pair allows.
                await self._postpone([i.id for i in items[index:]], delay)
                return
            retry_in = await self._send_one(item, config)
            if retry_in is not None:
                # A retry is pending: the rows behind it wait for it, in order.
                await self._postpone([i.id for i in items[index + 1 :]], retry_in)
                return

    async def _postpone(self, ids: list[int], seconds: float) -> None:
        """Put claimed rows back, due in ``seconds``; their claim does not count as an attempt."""
        if not ids:
            return
        async with self._db.session() as session:
            await session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(ids))
                .values(
                    next_attempt_at=utcnow() + timedelta(seconds=seconds),
                    attempts=OutboxItem.attempts - 1,
                    lease_owner=None,
                )
            )

    async def _send_one(self, item: Claimed, config: InboxSendConfig) -> float | None:
        """Send one row. Returns the seconds until its retry when it was put back."""
        if item.outgoing is None:
            async with self._db.session() as session:
                await self._finish(session, item, "done", None)
            return None
        outbound, to_upload = item.outgoing.outbound, item.outgoing.to_upload
        try:
            if to_upload is not None:
                outbound = replace(outbound, media_id=await self._upload(item, config, *to_upload))
        except ChannelSendError as error:
            error.maybe_sent = False  # an upload done twice sends nothing twice
            return await self._record_failure(item, error)
        self.in_flight.add(item.id)
        try:
            result = await config.client.send(outbound)
        except ChannelSendError as error:
            return await self._record_failure(item, error)
        except ValueError as error:
            return await self._record_failure(
                item, ChannelSendError("131051", str(error), transient=False)
            )
        finally:
            self.in_flight.discard(item.id)
        await self._recorder.record(Sent(item.id, item.message_id, result.external_id))
        MESSAGES_SENT.inc()
        return None

    async def _upload(
        self, item: Claimed, config: InboxSendConfig, key: str, mime: str, filename: str
    ) -> str:
        """Upload an outbound file to WhatsApp (``POST /{phone_number_id}/media``) and keep
        its media id on the message, so that a retry sends without uploading again."""
        try:
            data = await self._store.get(key)
        except (OSError, ValueError) as exc:
            raise ChannelSendError(
                "131053", "The file to send is missing from the media store.", transient=False
            ) from exc
        media_id = await config.client.upload_media(data, mime, filename)
        async with self._db.session() as session:
            await session.execute(
                update(Message).where(Message.id == item.message_id).values(media_id=media_id)
            )
        return media_id

    async def _record_failure(self, item: Claimed, error: ChannelSendError) -> float | None:
        retry = error.transient and item.attempts < self._settings.outbox_max_attempts
        if error.code == "131056":
            self._pacer.penalise_pair(item.inbox_id, item.recipient)
        async with self._db.session() as session:
            if retry:
                wait = backoff_seconds(
                    item.attempts,
                    base=self._settings.outbox_backoff_base_seconds,
                    cap=self._settings.outbox_backoff_max_seconds,
                    retry_after=error.retry_after,
                )
                if error.code == "131056":
                    wait = max(
                        wait,
                        min(PAIR_LIMIT_BACKOFF_SECONDS, self._settings.outbox_backoff_max_seconds),
                    )
                reason = f"{error.code}: {error.title}"
                if error.maybe_sent:
                    # WhatsApp may have it: a status naming it adopts the send meanwhile.
                    wait = max(wait, self._settings.outbox_unanswered_wait_seconds)
                    reason += f" (may have been sent: sent again only if no status in {wait:.0f} s)"
                await session.execute(
                    update(OutboxItem)
                    # Not a row a status has adopted meanwhile (outbox/tracking.py).
                    .where(OutboxItem.id == item.id, OutboxItem.state == "pending")
                    .values(
                        next_attempt_at=utcnow() + timedelta(seconds=wait),
                        last_error=reason[:2000],
                        lease_owner=None,
                    )
                )
                SEND_RETRIES.labels("unanswered" if error.maybe_sent else error.code).inc()
                log.info(
                    "outbox.retry",
                    outbox_id=item.id,
                    code=error.code,
                    maybe_sent=error.maybe_sent,
                    wait_s=round(wait, 2),
                )
                return wait
            message = await session.get(Message, item.message_id)
            # A message with a provider id was adopted by a status meanwhile: it went out.
            if message is not None and message.external_id is None:
                message.status = "failed"
                message.failed_at = utcnow()
                message.error_code = error.code[:20]
                message.error_title = human_reason(error.code, error.title)[:500]
                queue_message_updated(session, message)
            if error.account_problem:
                inbox = await session.get(Inbox, item.inbox_id)
                if inbox is not None and not inbox.needs_attention:
                    inbox.needs_attention = True
                    inbox.attention_reason = human_reason(error.code, error.title)[:500]
                    queue_event(session, "inbox.needs_attention", {"inbox_id": inbox.id})
            await self._finish(session, item, "failed", f"{error.code}: {error.title}")
        MESSAGES_FAILED.labels(error.code).inc()
        log.info("outbox.failed", outbox_id=item.id, code=error.code)
        return None

    async def _finish(
        self, session: AsyncSession, item: Claimed, state: str, error: str | None
    ) -> None:
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item.id, OutboxItem.state == "pending")
            .values(state=state, last_error=error[:2000] if error else None, updated_at=utcnow())
        )


def _outgoing(message: Message | None, recipient: str) -> Outgoing | None:
    if message is None:
        return None
    upload = bool(message.content.get("upload_id"))
    return Outgoing(
        OutboundMessage(
            recipient=recipient,
            type=message.type,
            text=message.text,
            content=message.content,
            reply_to_external_id=message.reply_to_external_id,
            media_link=message.content.get("media_link"),
            media_id=message.media_id if upload else None,
            tracking=tracking_for(message.id),
        ),
        (message.media_key, message.media_mime or "", message.media_filename or "file")
        if upload and not message.media_id and message.media_key
        else None,
    )


def _in_order(
    candidates: Sequence[tuple[int, int, str]], pending: dict[tuple[int, str], list[int]]
) -> list[int]:
    """The candidate ids that continue each recipient's queue from its head, with no gap.

    A row waiting for a retry (pending, not due) stops its recipient's queue there: nothing
    behind it goes out first.
    """
    by_pair: dict[tuple[int, str], list[int]] = defaultdict(list)
    for cid, inbox_id, recipient in candidates:
        by_pair[(inbox_id, recipient)].append(cid)
    chosen: list[int] = []
    for pair, ids in by_pair.items():
        queue = pending.get(pair, [])
        for position, cid in enumerate(ids):
            if position >= len(queue) or queue[position] != cid:
                break
            chosen.append(cid)
    return sorted(chosen)
