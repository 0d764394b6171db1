"""GET /api/v1/events: the event log as Server-Sent Events, resumable exactly once, in order.

A stream starts after ``Last-Event-ID`` (what EventSource sends when it reconnects), else
after ``?after=<id>`` (the id a page was rendered at, see ``current_event_id``), else at the
current end. It sends what was missed, then tails the log through the process's EventFeed.
A client too far behind (more than MAX_BEHIND events, or events already deleted by the
retention) gets one ``reset`` event and continues from the current end: it reloads its view.

What a principal receives: events of the inboxes it may see; events without an inbox
(contacts, links) only if it sees every inbox; never the process-internal wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from wadesk.accounts.access import Principal
from wadesk.deps import RuntimeDep, require_permission
from wadesk.realtime.bus import WAKE_UP_KINDS
from wadesk.realtime.feed import MAX_BEHIND, EventFeed
from wadesk.realtime.queries import LoggedEvent, current_event_id, events_after

log = structlog.get_logger(__name__)
router = APIRouter(tags=["events"])

CATCH_UP_BATCH = 500
HEARTBEAT_SECONDS = 15.0
TICK_SECONDS = 1.0  # how often a waiting stream looks at the feed and at shutdown anyway
# A stream ends after at most this long and the browser reconnects (Last-Event-ID, no loss):
# its permissions are checked again. Each stream's span is drawn between 80 % and 100 % of
# it, so that browsers that connected together (after a deploy, a network blip) do not all
# reconnect in the same instant (bench/faults/festival.py's 5-minute soak: 50 streams ending
# together at 500 msg/s stalled the servers for seconds).
MAX_STREAM_SECONDS = 300.0
CURSOR_EVERY = 1_000  # events skipped (not visible to this principal) before a cursor frame
RETRY_MS = 1_000

EventsReader = Annotated[Principal, require_permission("conversations.read")]


def visible_to(principal: Principal, event: LoggedEvent) -> bool:
    if event.kind in WAKE_UP_KINDS:  # none are logged now; a log written before may hold some
        return False
    if event.inbox_id is None:
        return principal.inbox_ids is None
    return principal.can_see_inbox(event.inbox_id)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    principal: EventsReader,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=0, description="Resume after this event id")] = None,
) -> StreamingResponse:
    """Server-Sent Events: every event the caller may see, in order, each once (docs/api.md)."""
    _watch_uvicorn_shutdown()
    header = request.headers.get("last-event-id")
    start: int | None = after
    bad_resume = False
    if header is not None and header.strip():
        try:
            start = int(header.strip())
            bad_resume = start < 0
        except ValueError:
            bad_resume = True
    server = request.scope.get("server")
    port = server[1] if isinstance(server, tuple | list) and len(server) > 1 else None
    stream = _Stream(runtime.events, runtime.db, principal, start, bad_resume, port)
    return StreamingResponse(
        stream.run(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _Stream:
    def __init__(
        self,
        feed: EventFeed,
        db: Any,
        principal: Principal,
        start: int | None,
        bad_resume: bool,
        port: int | None,
    ) -> None:
        self.feed = feed
        self.db = db
        self.principal = principal
        self.start = start
        self.bad_resume = bad_resume
        self.port = port
        self.opened = time.monotonic()
        self.lifetime = MAX_STREAM_SECONDS * random.uniform(0.8, 1.0)
        self.position = 0  # the last id this stream has dealt with (sent or skipped)
        self.sent = 0  # the last id the client knows of (an event or a cursor)

    async def run(self) -> AsyncIterator[bytes]:
        with self.feed.subscribe():
            yield b"retry: %d\n\n" % RETRY_MS
            async with self.db.reader() as session:
                end = await current_event_id(session)
            if self.bad_resume:
                yield self._reset_to(end)
            elif self.start is None:
                self.position = self.sent = end
            elif self.start > end or end - self.start > MAX_BEHIND:
                # Garbage, an id this database never gave (a restore, another server), or
                # too far behind: the client reloads its view and goes on from here.
                yield self._reset_to(end)
            else:
                self.position = self.sent = self.start
            heartbeat_at = time.monotonic() + HEARTBEAT_SECONDS
            while not self._stopping():
                changed = self.feed.changed()
                frames, more = await self._next()
                if frames:
                    # One write for the whole batch: with 50 streams at 500 msg/s, a send per
                    # event was tens of thousands of ASGI sends a second.
                    yield b"".join(frames)
                if more:
                    await asyncio.sleep(0)  # let the disconnect watcher run
                    continue
                now = time.monotonic()
                if now >= heartbeat_at:
                    heartbeat_at = now + HEARTBEAT_SECONDS
                    yield b": ping\n\n"
                    if self.position > self.sent:
                        yield self._cursor()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        changed.wait(), timeout=min(TICK_SECONDS, heartbeat_at - now)
                    )

    def _stopping(self) -> bool:
        return (
            self.feed.closing.is_set()
            or time.monotonic() - self.opened > self.lifetime
            or _server_closing(self.port, self.opened)
        )

    async def _next(self) -> tuple[list[bytes], bool]:
        """Frames for what follows ``position``, and whether more is waiting already."""
        events = self.feed.since(self.position)
        more = False
        frames: list[bytes] = []
        if events is not None:
            assert self.feed.last is not None
            if self.feed.last - self.position > MAX_BEHIND:
                return [self._reset_to(self.feed.last)], False
        else:
            async with self.db.reader() as session:
                end = await current_event_id(session)
                if self.position > end or end - self.position > MAX_BEHIND:
                    return [self._reset_to(end)], False
                events = await events_after(session, self.position, CATCH_UP_BATCH)
            if self.position < end and (not events or events[0].id != self.position + 1):
                # Deleted by the retention meanwhile: the client cannot be brought up to date.
                return [self._reset_to(end)], False
            more = len(events) == CATCH_UP_BATCH
        for event in events:
            self.position = event.id
            if visible_to(self.principal, event):
                frames.append(event.frame())
                self.sent = event.id
        if self.position - self.sent >= CURSOR_EVERY:
            frames.append(self._cursor())
        return frames, more

    def _reset_to(self, end: int) -> bytes:
        self.position = self.sent = end
        return _reset(end)

    def _cursor(self) -> bytes:
        """Tell the client how far the stream has read, so that it resumes from there."""
        self.sent = self.position
        return b"id: %d\nevent: cursor\ndata: %s\n\n" % (
            self.position,
            orjson.dumps({"id": self.position}),
        )


def _reset(end: int) -> bytes:
    return b"id: %d\nevent: reset\ndata: %s\n\n" % (end, orjson.dumps({"id": end}))


# --- ending streams when the server shuts down -----------------------------------------------
# uvicorn waits for every open response before it shuts down, and tells the application
# nothing; an SSE stream never ends by itself. So its Server.shutdown is wrapped (once, in the
# process that serves a stream) to note which ports are closing; streams on them end.

_closing_ports: dict[int | None, float] = {}


def _server_closing(port: int | None, since: float) -> bool:
    for key in (port, None):
        at = _closing_ports.get(key)
        if at is not None and at >= since:
            return True
    return False


def _watch_uvicorn_shutdown() -> None:
    try:
        from uvicorn.server import Server
    except ImportError:  # pragma: no cover - another ASGI server
        return
    if getattr(Server.shutdown, "wadesk_watch", False):
        return
    original = Server.shutdown

    async def shutdown(self: Server, sockets: list[socket.socket] | None = None) -> None:
        now = time.monotonic()
        ports: set[int | None] = set()
        listening = [s for server in self.servers for s in (server.sockets or ())]
        for sock in [*listening, *(sockets or [])]:
            with contextlib.suppress(OSError):
                address = sock.getsockname()
                if isinstance(address, tuple):
                    ports.add(int(address[1]))
        for port in ports or {None}:
            _closing_ports[port] = now
        await original(self, sockets)

    shutdown.wadesk_watch = True  # type: ignore[attr-defined]
    Server.shutdown = shutdown  # type: ignore[method-assign]
