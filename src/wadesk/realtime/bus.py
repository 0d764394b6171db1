"""In-process event fan-out. Events reach it only after their transaction commits (db.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Event = tuple[str, dict[str, Any]]


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
