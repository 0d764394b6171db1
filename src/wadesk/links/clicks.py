"""Counting short-link clicks without an insert per click and without storing IP addresses.

Each process counts clicks in memory and adds them to ``link_click_days`` in one transaction
every ``WADESK_LINKS_CLICK_FLUSH_SECONDS`` (and at graceful shutdown). Unique visitors are a
keyed hash of (link, IP address, user agent) whose key is derived from the secret key and the
UTC date, so a visitor cannot be followed from one day (or one link) to the next; the hashes
are deleted after a few days, the day's unique count stays. See docs/decisions/0021.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.db import Database, insert_for, utcnow
from wadesk.links.models import Link, LinkClickDay, LinkClickVisitor

log = structlog.get_logger(__name__)

CLICKS = Counter("wadesk_link_clicks_total", "Short-link redirects counted", ["kind"])
CLICKS_PENDING = Gauge("wadesk_link_clicks_pending", "Clicks counted but not yet written")
FLUSH_FAILURES = Counter("wadesk_link_click_flush_failures_total", "Click writes that failed")
PERSON_CLICKS = CLICKS.labels("person")
BOT_CLICKS = CLICKS.labels("bot")

# Link previews and crawlers: redirected like anyone, counted apart.
BOT_RE = re.compile(
    r"bot\b|crawler|spider|preview|facebookexternalhit|facebookcatalog|whatsapp/|slackbot|"
    r"telegrambot|discordbot|twitterbot|linkedinbot|skypeuripreview|embedly|pinterest|"
    r"vkshare|redditbot|applebot|googlebot|bingbot|yandex|baiduspider|duckduckbot|"
    r"headlesschrome|python-requests|curl/|wget/|go-http-client|okhttp",
    re.IGNORECASE,
)
MAX_PENDING_VISITORS = 200_000  # beyond, uniques are no longer tracked until the next write
# Visitors this process has already written today: not sent to the database again.
MAX_SEEN_VISITORS = 200_000
PRUNE_EVERY = timedelta(hours=1)


@lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    return not user_agent or BOT_RE.search(user_agent) is not None


@lru_cache(maxsize=8)
def _day_key(secret_key: str, day: date) -> bytes:
    """The salt of one UTC day: derived, never stored, different every day."""
    base = hashlib.sha256(b"wadesk-link-visitors:" + secret_key.encode()).digest()
    return hmac.new(base, day.isoformat().encode(), hashlib.sha256).digest()


def visitor_hash(secret_key: str, day: date, link_id: int, ip: str, user_agent: str) -> str:
    key = _day_key(secret_key, day)
    data = f"{link_id}\n{ip}\n{user_agent}".encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


class ClickRecorder:
    """The click buffer of one process."""

    def __init__(
        self,
        db: Database,
        *,
        secret_key: str,
        flush_seconds: float = 1.0,
        retention_days: int = 2,
    ) -> None:
        self._db = db
        self._secret = secret_key
        self._flush_seconds = flush_seconds
        self._retention = timedelta(days=retention_days)
        # (link_id, day) -> [people's clicks, bots' clicks]
        self._counts: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])
        self._visitors: set[tuple[int, date, str]] = set()
        self._seen: set[tuple[int, date, str]] = set()
        self._seen_day: date | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_prune: datetime | None = None
        self.written = 0  # clicks (people's and bots') written by this process

    def record(
        self, link_id: int, *, ip: str, user_agent: str, now: datetime | None = None
    ) -> None:
        """Count one click (synchronous: never waits, never fails)."""
        day = (now or utcnow()).date()
        bot = is_bot(user_agent)
        counts = self._counts[(link_id, day)]
        if bot:
            counts[1] += 1
            BOT_CLICKS.inc()
        else:
            counts[0] += 1
            PERSON_CLICKS.inc()
            if len(self._visitors) < MAX_PENDING_VISITORS:
                visitor = (link_id, day, visitor_hash(self._secret, day, link_id, ip, user_agent))
                if visitor not in self._seen:
                    self._visitors.add(visitor)

    @property
    def pending(self) -> int:
        return sum(a + b for a, b in self._counts.values())

    async def flush(self) -> int:
        """Write what was counted; on failure it is kept for the next try. Clicks written."""
        async with self._lock:
            if not self._counts:
                return 0
            counts, self._counts = self._counts, defaultdict(lambda: [0, 0])
            visitors, self._visitors = self._visitors, set()
            try:
                async with self._db.session() as session:
                    await write_clicks(session, counts, visitors)
            except BaseException:
                for key, (people, bots) in counts.items():
                    mine = self._counts[key]
                    mine[0] += people
                    mine[1] += bots
                room = MAX_PENDING_VISITORS - len(self._visitors)
                self._visitors.update(list(visitors)[: max(0, room)])
                CLICKS_PENDING.set(self.pending)
                raise
            self._remember(visitors)
            written = sum(a + b for a, b in counts.values())
            self.written += written
            CLICKS_PENDING.set(self.pending)
            return written

    def _remember(self, visitors: set[tuple[int, date, str]]) -> None:
        today = utcnow().date()
        if self._seen_day != today or len(self._seen) + len(visitors) > MAX_SEEN_VISITORS:
            self._seen = set()
            self._seen_day = today
        self._seen.update(v for v in visitors if v[1] == today)

    async def prune(self) -> int:
        """Forget visitor hashes older than the retention (their days keep their counts)."""
        cutoff = (utcnow() - self._retention).date()
        async with self._db.session() as session:
            result = await session.execute(
                delete(LinkClickVisitor).where(LinkClickVisitor.day < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def run_forever(self) -> None:
        delay = self._flush_seconds
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                now = utcnow()
                if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
                    self._last_prune = now
                    await self.prune()
                delay = self._flush_seconds
            except asyncio.CancelledError:
                raise
            except Exception:
                FLUSH_FAILURES.inc()
                log.warning("links.click_flush_failed", pending=self.pending, exc_info=True)
                delay = min(30.0, max(delay * 2, self._flush_seconds))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="link-clicks")

    async def stop(self, attempts: int = 5) -> None:
        """Graceful shutdown: stop the loop, then write everything counted (retrying)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for attempt in range(attempts):
            try:
                await self.flush()
                return
            except Exception:
                FLUSH_FAILURES.inc()
                log.warning("links.click_flush_failed", pending=self.pending, attempt=attempt)
                await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        log.error("links.clicks_lost_at_shutdown", clicks=self.pending)


T = TypeVar("T")


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def write_clicks(
    session: AsyncSession,
    counts: dict[tuple[int, date], list[int]],
    visitors: set[tuple[int, date, str]],
) -> None:
    """Add counted clicks to the day rows (additive upserts: any number of processes)."""
    link_ids = sorted({link_id for link_id, _ in counts})
    existing = set((await session.scalars(select(Link.id).where(Link.id.in_(link_ids)))).all())
    insert = insert_for(session.bind.dialect.name)
    size = 1000 if session.bind.dialect.name == "postgresql" else 300
    new_uniques: dict[tuple[int, date], int] = defaultdict(int)
    rows = sorted(v for v in visitors if v[0] in existing)
    for chunk in _chunks(rows, size):
        inserted = await session.execute(
            insert(LinkClickVisitor)
            .values([{"link_id": lid, "day": day, "visitor": vis} for lid, day, vis in chunk])
            .on_conflict_do_nothing(index_elements=["link_id", "day", "visitor"])
            .returning(LinkClickVisitor.link_id, LinkClickVisitor.day)
        )
        for link_id, day in inserted.tuples():
            new_uniques[(int(link_id), day)] += 1
    day_rows = [
        {
            "link_id": link_id,
            "day": day,
            "clicks": people,
            "bot_clicks": bots,
            "uniques": new_uniques.get((link_id, day), 0),
        }
        for (link_id, day), (people, bots) in sorted(counts.items())
        if link_id in existing
    ]
    for day_chunk in _chunks(day_rows, size):
        statement = insert(LinkClickDay).values(day_chunk)
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["link_id", "day"],
                set_={
                    "clicks": LinkClickDay.clicks + excluded.clicks,
                    "bot_clicks": LinkClickDay.bot_clicks + excluded.bot_clicks,
                    "uniques": LinkClickDay.uniques + excluded.uniques,
                },
            )
        )
