"""Fan committed events out to every process through Redis pub/sub (when WADESK_REDIS_URL is set).

Each process publishes the events its transactions committed, tagged with its own id, and feeds
the events of other processes into its local bus and wake-ups: a message queued by a server
process wakes a separate ``wadesk worker`` at once instead of at its next poll.

Redis carries notifications only, never state: if it is down, nothing is lost (workers poll,
the processor sweeps, SSE streams read the event log every second) and the bridge reconnects
by itself. Each event travels with its event-log id, so another process's SSE streams know at
once that the log has grown.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from wadesk.realtime.bus import Event

log = structlog.get_logger(__name__)
CHANNEL = "wadesk:events"
MAX_IN_FLIGHT = 10_000


class RedisBridge:
    def __init__(self, url: str, on_remote: Callable[[list[Event]], None]) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        # The subscriber waits for messages indefinitely; pings find a dead connection.
        self._listener: Redis = Redis.from_url(
            url, socket_connect_timeout=2, health_check_interval=30
        )
        self._on_remote = on_remote
        self.origin = uuid.uuid4().hex
        self._sending: set[asyncio.Task[None]] = set()
        self._subscribed = False

    def publish(self, events: list[Event]) -> None:
        """Called after commit, from synchronous code: hand off, never block."""
        if len(self._sending) >= MAX_IN_FLIGHT:
            log.warning("redis_bridge.dropped", reason="too many publishes in flight")
            return
        payload = orjson.dumps(
            {"origin": self.origin, "events": [[e.id, e[0], e[1]] for e in events]}
        )
        task = asyncio.get_running_loop().create_task(self._send(payload))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, payload: bytes) -> None:
        try:
            await self._redis.publish(CHANNEL, payload)
        except RedisError as exc:
            log.warning("redis_bridge.publish_failed", error=type(exc).__name__)

    async def run_subscriber(self) -> None:
        while True:
            try:
                async with self._listener.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._subscribed = True
                    async for message in pubsub.listen():
                        self._receive(message)
            except (RedisError, OSError) as exc:
                self._subscribed = False
                log.warning("redis_bridge.subscriber_reconnecting", error=type(exc).__name__)
                await asyncio.sleep(1.0)

    def _receive(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            data = orjson.loads(message["data"])
            if data.get("origin") == self.origin:
                return
            events = [_event(item) for item in data["events"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("redis_bridge.bad_message")
            return
        self._on_remote(events)

    @property
    def connected(self) -> bool:
        """Whether the subscriber currently holds a live subscription (for tests, health)."""
        return self._subscribed

    async def aclose(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await self._redis.aclose()
        await self._listener.aclose()


def _event(item: list[Any]) -> Event:
    """``[id, kind, payload]``; ``[kind, payload]`` from a process of an older version."""
    if len(item) == 3:
        event_id, kind, payload = item
        return Event(str(kind), dict(payload), int(event_id) if event_id is not None else None)
    kind, payload = item
    return Event(str(kind), dict(payload))
