"""Helpers for the links tests: a manager's token, links made through the API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.browser.conftest import browser  # noqa: F401  (Playwright, for these tests too)
from tests.helpers import auth, create_user

BR_NUMBER = "+55 11 98765-4321"


@pytest.fixture
async def admin(live: Any) -> dict[str, str]:
    _, token = await create_user(live, email="admin@example.com", role="admin")
    return auth(token)


async def new_link(live: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("phone", BR_NUMBER)
    response = await live.client.post("/api/v1/links", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def raw_requests(
    port: int, requests: list[tuple[str, str]], *, connections: int = 20
) -> list[int]:
    """Send ``(path, user agent)`` GET requests over ``connections`` keep-alive connections at
    once; the status of each, in order. A bare HTTP/1.1 client: httpx's pool gets slow with
    hundreds of waiting requests, and this test is about the server."""
    statuses: list[int] = [0] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                index = queue.get_nowait()
                path, agent = requests[index]
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"User-Agent: {agent}\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                statuses[index] = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses
