"""A short-lived, per-process cache of the inboxes' webhook credentials.

The webhook endpoint must check a signature before it parses anything, for every request, so
it cannot afford a query and a decryption each time. Entries live a few seconds; a change made
in this process invalidates them at once, other processes see it within the TTL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.db import Database
from wadesk.inboxes.models import Inbox


@dataclass(frozen=True, slots=True)
class InboxCredentials:
    id: int
    channel_type: str
    account_id: str
    webhook_key: str
    app_secret: str
    verify_token: str


class InboxRegistry:
    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._loaded_at = 0.0
        self._items: list[InboxCredentials] = []
        self._loading = asyncio.Lock()

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    async def all(self, session: AsyncSession | None = None) -> list[InboxCredentials]:
        """The inboxes, reloaded when stale. Pass the caller's session when it holds one: on
        SQLite the pool has a single connection, and a second session would wait forever."""
        if time.monotonic() - self._loaded_at > self._ttl:
            if session is not None:
                await self._load(session)
                return self._items
            # Under load, many requests find the cache stale at once: one of them reloads.
            async with self._loading:
                if time.monotonic() - self._loaded_at > self._ttl:
                    async with self._db.session() as own:
                        await self._load(own)
        return self._items

    async def _load(self, session: AsyncSession) -> None:
        inboxes = (await session.scalars(select(Inbox).order_by(Inbox.id))).all()
        self._items = [
            InboxCredentials(
                id=i.id,
                channel_type=i.channel_type,
                account_id=i.external_account_id,
                webhook_key=i.webhook_key,
                app_secret=i.app_secret,
                verify_token=i.verify_token,
            )
            for i in inboxes
        ]
        self._loaded_at = time.monotonic()

    async def by_channel(self, channel_type: str) -> list[InboxCredentials]:
        return [i for i in await self.all() if i.channel_type == channel_type]

    async def by_webhook_key(self, key: str) -> InboxCredentials | None:
        return next((i for i in await self.all() if i.webhook_key == key), None)

    async def by_account(
        self, channel_type: str, account_id: str, session: AsyncSession | None = None
    ) -> InboxCredentials | None:
        for item in await self.all(session):
            if item.channel_type == channel_type and item.account_id == account_id:
                return item
        return None
