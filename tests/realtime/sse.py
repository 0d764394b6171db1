"""A minimal Server-Sent Events reader over httpx, for the tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Frame:
    id: int | None
    event: str
    data: Any


class SseClient:
    """Reads frames in the background into a queue; ``frames()`` waits for them."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self.raw: list[str] = []
        self.ended = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                self.raw.append(line)
                if line == "":
                    if "data" in fields or "event" in fields:
                        data = fields.get("data")
                        self.queue.put_nowait(
                            Frame(
                                int(fields["id"]) if "id" in fields else None,
                                fields.get("event", "message"),
                                json.loads(data) if data else None,
                            )
                        )
                    fields = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
        except (httpx.HTTPError, asyncio.CancelledError) as exc:
            self.raw.append(f"<{type(exc).__name__}: {exc}>")
        finally:
            self.ended.set()
            self.queue.put_nowait(None)

    async def take(self, count: int, *, timeout: float = 10.0) -> list[Frame]:
        """The next ``count`` frames (heartbeats and cursors included)."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while len(frames) < count:
                frame = await self.queue.get()
                if frame is None:
                    raise AssertionError(f"stream ended after {frames!r}; raw: {self.raw[-10:]!r}")
                frames.append(frame)
        return frames

    async def events(self, count: int, *, timeout: float = 10.0) -> list[Frame]:
        """The next ``count`` event frames, skipping cursor frames."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while len(frames) < count:
                frame = await self.queue.get()
                if frame is None:
                    raise AssertionError(f"stream ended after {frames!r}; raw: {self.raw[-10:]!r}")
                if frame.event != "cursor":
                    frames.append(frame)
        return frames

    async def nothing_more(self, seconds: float = 1.5) -> None:
        """No event frame arrives within ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    frame = await self.queue.get()
                    if frame is not None and frame.event != "cursor":
                        raise AssertionError(f"unexpected {frame!r}")
                    if frame is None:
                        return
        except TimeoutError:
            return

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.response.aclose()


@asynccontextmanager
async def sse(
    client: httpx.AsyncClient, url: str = "/api/v1/events", **kw: Any
) -> AsyncIterator[SseClient]:
    request = client.build_request("GET", url, **kw)
    response = await client.send(request, stream=True)
    assert response.status_code == 200, (response.status_code, await response.aread())
    reader = SseClient(response)
    try:
        yield reader
    finally:
        await reader.aclose()
