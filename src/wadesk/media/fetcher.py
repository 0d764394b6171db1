"""Download inbound media right away: the provider's URL expires within minutes."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes

import structlog
from sqlalchemy import select, text

from wadesk.background import BackgroundLoop
from wadesk.channels.base import ChannelSendError
from wadesk.channels.whatsapp.client import WhatsAppClient
from wadesk.config import Settings
from wadesk.conversations.events import queue_message_updated
from wadesk.conversations.models import Message
from wadesk.db import Database
from wadesk.httpclient import HttpClient
from wadesk.inboxes.models import Inbox
from wadesk.media.store import MediaStore

log = structlog.get_logger(__name__)
MAX_MEDIA_ATTEMPTS = 5


class MediaFetcher(BackgroundLoop):
    name = "media.fetcher"
    idle_seconds = 10.0

    def __init__(
        self, db: Database, settings: Settings, http: HttpClient, store: MediaStore
    ) -> None:
        super().__init__()
        self._db = db
        self._settings = settings
        self._http = http
        self._store = store

    async def run_once(self, limit: int = 20) -> int:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Message.id, Message.media_id, Message.media_attempts, Inbox)
                    .join(Inbox, Inbox.id == Message.inbox_id)
                    .where(text("messages.media_status = 'pending'"))
                    .order_by(Message.id)
                    .limit(limit)
                )
            ).all()
        jobs = [(mid, media_id, attempts, inbox) for mid, media_id, attempts, inbox in rows]
        await asyncio.gather(*(self._fetch(*job) for job in jobs))
        return len(jobs)

    async def _fetch(self, message_id: int, media_id: str, attempts: int, inbox: Inbox) -> None:
        client = WhatsAppClient(
            http=self._http,
            graph_url=inbox.graph_url,
            api_version=inbox.api_version,
            phone_number_id=inbox.external_account_id,
            access_token=inbox.access_token,
        )
        key = None
        size = None
        sha = None
        mime = None
        error = None
        for attempt in range(3):
            try:
                data, mime = await client.fetch_media(media_id)
                if len(data) > self._settings.media_max_bytes:
                    error = "media larger than WADESK_MEDIA_MAX_BYTES"
                    break
                suffix = mimetypes.guess_extension((mime or "").split(";")[0].strip()) or ""
                key = await self._store.put(data, suffix=suffix)
                size, sha = len(data), hashlib.sha256(data).hexdigest()
                break
            except ChannelSendError as exc:
                error = f"{exc.code}: {exc.title}"
                if not exc.transient:
                    break
                await asyncio.sleep(0.5 * 2**attempt)
        async with self._db.session() as session:
            message = await session.get(Message, message_id)
            if message is None:
                return
            message.media_attempts = attempts + 1
            if key is not None:
                message.media_key, message.media_size = key, size
                message.media_sha256 = message.media_sha256 or sha
                message.media_mime = message.media_mime or mime
                message.media_status = "stored"
            elif (
                message.media_attempts >= MAX_MEDIA_ATTEMPTS
                or error == "media larger than WADESK_MEDIA_MAX_BYTES"
            ):
                message.media_status = "failed"
                log.warning("media.failed", message_id=message_id, error=error)
            else:
                return
            queue_message_updated(session, message)
