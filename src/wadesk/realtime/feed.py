"""One tail of the event log per process, shared by every SSE stream of that process.

The feed reads ``id > last`` whenever something may have been committed: a commit of this
process, a Redis notification from another one, or at the latest every ``poll_seconds`` (so
it works without Redis and while Redis is down). It keeps the most recent events in memory;
streams take their events from there, and read the table themselves only to catch up from
further back. With no stream connected it reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Iterator

import structlog

from wadesk.db import Database
from wadesk.realtime.queries import LoggedEvent, current_event_id, events_after

log = structlog.get_logger(__name__)

# A stream further behind than this is told to reload (``reset``, realtime/api.py), so the
# memory keeps exactly this many events: more would never be served.
MAX_BEHIND = 5_000


class EventFeed:
    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = 1.0,
        keep: int = MAX_BEHIND,
        batch: int = 1_000,
    ) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._keep = keep
        self._batch = batch
        self._buffer: deque[LoggedEvent] = deque()
        self.last: int | None = None  # highest id read; None: not tailing now
        self._base = 0  # the buffer holds the events base+1 .. last, without gaps
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._subscribers = 0
        self.closing = asyncio.Event()  # the runtime stops: streams end

    def wake(self) -> None:
        """Something may have been committed (here or, through Redis, elsewhere)."""
        self._wake.set()

    def changed(self) -> asyncio.Event:
        """Set when the feed next advances. Take it BEFORE looking at the feed, then wait."""
        return self._changed

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[None]:
        self._subscribers += 1
        self._wake.set()
        try:
            yield
        finally:
            self._subscribers -= 1

    def since(self, position: int) -> list[LoggedEvent] | None:
        """The events after ``position`` from memory, or None if memory does not reach back
        that far (or the feed is not tailing): the caller reads the table instead."""
        if self.last is None or position < self._base:
            return None
        if position >= self.last:
            return []
        wanted = self.last - position
        if wanted <= len(self._buffer) // 2:
            # The usual case, a stream a few events behind: walk back from the end (islice
            # from the front walks the whole buffer, up to ``keep`` events, for every stream
            # on every advance).
            tail = list(itertools.islice(reversed(self._buffer), wanted))
            tail.reverse()
            return tail
        return list(itertools.islice(self._buffer, position - self._base, None))

    def stop(self) -> None:
        self.closing.set()
        self._wake.set()

    async def run_forever(self) -> None:
        while not self.closing.is_set():
            if self._subscribers == 0:
                self._forget()
                await self._wake.wait()
                self._wake.clear()
                continue
            self._wake.clear()
            try:
                read = await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event_feed.error")
                await asyncio.sleep(1.0)
                continue
            if read < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def read_once(self) -> int:
        async with self.db.reader() as session:
            if self.last is None:
                self.last = self._base = await current_event_id(session)
                self._notify()
                return 0
            rows = await events_after(session, self.last, self._batch)
        if not rows:
            return 0
        if rows[0].id != self.last + 1:
            # Ids are handed out without gaps and appear in order: this means the table was
            # emptied or restored. Start afresh; streams behind it reset (they read the table).
            log.warning("event_feed.gap", expected=self.last + 1, got=rows[0].id)
            self._buffer.clear()
            self._base = rows[0].id - 1
        self._buffer.extend(rows)
        while len(self._buffer) > self._keep:
            self._buffer.popleft()
            self._base += 1
        self.last = rows[-1].id
        self._notify()
        return len(rows)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _forget(self) -> None:
        """Nobody listens: drop the tail; the next subscriber starts it again from the end."""
        if self.last is not None:
            self._buffer.clear()
            self.last = None
            self._notify()
