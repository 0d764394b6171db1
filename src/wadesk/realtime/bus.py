"""In-process event fan-out. Events reach it only after their transaction commits (db.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Wake-ups between processes ("there is work for you"), not news for a person. They reach
# the after-commit hooks and, through Redis, the other processes, like every event, but are
# not written to the event log: no stream shows them, and at one or two per message they
# were a quarter of the log's rows and of the sequencer's work.
WAKE_UP_KINDS = frozenset(
    {"outbox.queued", "ingest.replayed", "routing.drain_later", "automation.queued"}
)


class Event(tuple[str, dict[str, Any]]):
    """A committed event: unpacks as ``(kind, payload)`` like before; ``id`` is its id in the
    event log (None only for an event that never went through a commit)."""

    id: int | None

    def __new__(cls, kind: str, payload: dict[str, Any], id: int | None = None) -> Event:
        self = super().__new__(cls, (kind, payload))
        self.id = id
        return self

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def payload(self) -> dict[str, Any]:
        return self[1]

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, kind={self[0]!r}, payload={self[1]!r})"


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish_many(self, events: list[Event]) -> None:
        for queue in list(self._subscribers):
            for item in events:
                try:
                    queue.put_nowait(item)
                except asyncio.QueueFull:
                    # A subscriber that cannot keep up is dropped; it must reload its view.
                    self._subscribers.discard(queue)
                    break

    @contextmanager
    def subscribe(self, maxsize: int = 10_000) -> Iterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


bus = EventBus()
